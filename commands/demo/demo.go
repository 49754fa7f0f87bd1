// Package demo implements `socks demo`: the whole flow on a throwaway local
// stack, in one command.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/publish"
	"github.com/socks-dev/socks/commands/serve"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/ui"
	"github.com/socks-dev/socks/wsclient"
)

// Options are the inputs of `socks demo`.
type Options struct {
	IO   *iostreams.IOStreams
	Now  func() time.Time
	Keep bool
	JSON bool
	// Stopping records what the demo finishes after Ctrl-C, for Main to
	// say.
	Stopping *cmdutil.Stopping
}

// NewCmdDemo returns `socks demo`.
func NewCmdDemo(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Now: f.Now, Stopping: f.Stopping}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole flow on a throwaway local stack and show who got what",
		Long: `Demo starts a local gateway and broker on a temporary state dir and a free
loopback port, issues chatter IDs, connects three listeners, publishes two
messages through the queue, and shows who received what and who correctly
did not. A forged chatter ID is refused at the upgrade. Nothing outside the
temporary directory is touched; exits 0 when everything behaved.

Demo takes none of the global flags (--backend, --state-dir, --config, the
AWS settings): it always runs on its own throwaway local stack. For a stack
that lasts, run 'socks serve' (with --state-dir, or --backend aws) and, from
another terminal, 'socks chatter issue', 'socks listen' and 'socks publish'
with the same flags.`,
		Example: "  socks demo\n  socks demo --json | jq .ok",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.NoInheritedFlags(cmd, throwaway); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return demoRun(cmd.Context(), opts)
		},
	}
	cmdutil.MarkRefusesInheritedFlags(cmd)
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep the temporary state dir and print its path")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the outcome as JSON")
	return cmd
}

type listener struct {
	Geek   string   `json:"geek"`
	Topics []string `json:"topics"`
	conn   *wsclient.Conn
	mu     sync.Mutex
	got    []string
	// pong receives the gateway's answer to the listener's ping.
	pong chan struct{}
}

type step struct {
	Label  string          `json:"label"`
	Users  []string        `json:"users,omitempty"`
	Topics []string        `json:"topics"`
	Body   json.RawMessage `json:"body"`
	Expect []string        `json:"expect"`
}

// Outcome is the demo's result.
type Outcome struct {
	OK        bool           `json:"ok"`
	Gateway   string         `json:"gateway"`
	Messages  []step         `json:"messages"`
	Received  map[string]any `json:"received"`
	Refused   bool           `json:"forgedChatterIdRefused"`
	StateDir  string         `json:"stateDir,omitempty"`
	Problems  []string       `json:"problems,omitempty"`
	ElapsedMS int64          `json:"elapsedMs"`
}

// throwaway is why demo refuses the global flags: it reads none of them.
const throwaway = "it always runs on a throwaway local stack (a temporary state dir, removed after); " +
	"for a stack that lasts, run `socks serve` and, from another terminal, `socks publish`, both with these flags"

// demoTimeout bounds the whole demo.
var demoTimeout = 60 * time.Second

func demoRun(ctx context.Context, opts *Options) error {
	dctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	err := runDemo(dctx, opts)
	if err != nil && errors.Is(dctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		// Whichever step it cut short, its error would speak of a
		// context deadline.
		return fmt.Errorf("the demo did not finish within %s: is the machine very busy?", demoTimeout)
	}
	return err
}

func runDemo(ctx context.Context, opts *Options) error {
	start := time.Now()
	dir, err := os.MkdirTemp("", "socks-demo-*")
	if err != nil {
		return fmt.Errorf("creating a temporary state dir in %s: %w; set %s to a writable directory", os.TempDir(), unwrapPath(err), tempDirVariable())
	}
	if !opts.Keep {
		defer opts.Stopping.Add(cmdutil.Work{
			What: "stopping the demo's gateway and removing its state dir",
			Left: "the demo's temporary state dir " + dir + " is left behind: remove it",
		})()
		defer os.RemoveAll(dir)
	}
	progress := func(format string, args ...any) {
		if opts.IO.IsStderrTTY() && !opts.JSON {
			fmt.Fprintf(opts.IO.ErrOut, "  "+format+"\n", args...)
		}
	}

	cfg := config.Config{Backend: config.BackendLocal, StateDir: dir}
	b, err := backend.Open(ctx, cfg, backend.Options{Now: opts.Now})
	if err != nil {
		return err
	}
	defer b.Close()

	// The gateway and broker, exactly as `socks serve` runs them.
	ready := make(chan [2]string, 1)
	serveCtx, stopServe := context.WithCancel(ctx)
	serveDone := make(chan error, 1)
	quiet, _, _, _ := iostreams.Test()
	quiet.Out, quiet.ErrOut = io.Discard, io.Discard
	go func() {
		serveDone <- serve.Run(serveCtx, &serve.Options{
			IO:          quiet,
			Backend:     func(context.Context) (*backend.Backend, error) { return b, nil },
			Now:         opts.Now,
			Addr:        "127.0.0.1:0",
			IdleTimeout: pubsub.IdleTimeout,
			MaxDuration: pubsub.MaxConnectionDuration,
			Concurrency: 8,
			Quiet:       true,
			Ready:       func(ws, mgmt string) { ready <- [2]string{ws, mgmt} },
		})
	}()
	defer func() {
		stopServe()
		<-serveDone
	}()
	var wsURL string
	select {
	case eps := <-ready:
		wsURL = eps[0]
	case err := <-serveDone:
		// Put it back for the deferred wait, which would otherwise
		// wait for a value already taken.
		serveDone <- err
		return fmt.Errorf("starting the local gateway: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	progress("local gateway on %s (state in %s)", wsURL, dir)

	listeners := []*listener{
		{Geek: "alice", Topics: []string{"updates"}},
		{Geek: "bob", Topics: []string{"updates"}},
		{Geek: "carol", Topics: []string{"news"}},
	}
	var wg sync.WaitGroup
	for _, l := range listeners {
		secret, _, err := store.IssueChatterID(ctx, b.Store, l.Geek, time.Hour, opts.Now())
		if err != nil {
			return err
		}
		u, err := wsclient.ConnectURL(wsURL, l.Geek, secret, l.Topics)
		if err != nil {
			return err
		}
		l.conn, err = wsclient.Dial(ctx, u, wsclient.Options{})
		if err != nil {
			return fmt.Errorf("connecting %s: %w", l.Geek, err)
		}
		defer l.conn.Close()
		progress("%s connected, following %s", l.Geek, strings.Join(l.Topics, ","))
		l.pong = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range l.conn.Frames() {
				if isPong(f.Data) {
					select {
					case l.pong <- struct{}{}:
					default:
					}
					continue
				}
				l.mu.Lock()
				l.got = append(l.got, string(f.Data))
				l.mu.Unlock()
			}
		}()
	}

	// A forged chatter ID is refused before any upgrade.
	refused := false
	if u, err := wsclient.ConnectURL(wsURL, "mallory", pubsub.NewChatterID(), nil); err == nil {
		c, err := wsclient.Dial(ctx, u, wsclient.Options{})
		var he *wsclient.HandshakeError
		if errors.As(err, &he) && he.Status == 403 {
			refused = true
		} else if c != nil {
			_ = c.Close()
		}
	}
	progress("mallory with a forged chatter ID: refused=%v", refused)

	steps := []step{
		{Label: "to alice on updates", Users: []string{"alice"}, Topics: []string{"updates"},
			Body: json.RawMessage(`{"event":"stats-refreshed","for":"alice"}`), Expect: []string{"alice"}},
		{Label: "to every subscriber of news", Topics: []string{"news"},
			Body: json.RawMessage(`{"event":"headline","text":"socks v1 is out"}`), Expect: []string{"carol"}},
	}
	for _, s := range steps {
		env := pubsub.Envelope{ID: pubsub.NewMessageID(), Users: s.Users, Topics: s.Topics, Body: s.Body}
		data, err := env.Marshal()
		if err != nil {
			return err
		}
		if _, err := b.Queue.Send(ctx, data); err != nil {
			return err
		}
		if _, err := publish.WaitReport(ctx, b.Store, env.ID, 30*time.Second); err != nil {
			return err
		}
		progress("published %s", s.Label)
	}
	out := Outcome{OK: refused, Gateway: wsURL, Messages: steps, Received: map[string]any{}, Refused: refused}
	if !refused {
		out.Problems = append(out.Problems, "a forged chatter ID was not refused with 403")
	}
	// Stray deliveries (there must be none) have arrived once each
	// listener has its pong: every delivery was accepted by the gateway
	// before its report was written, and the gateway answers a ping on
	// the same ordered queue as it delivers.
	for _, l := range listeners {
		if err := fence(ctx, l); err != nil {
			out.OK = false
			out.Problems = append(out.Problems, fmt.Sprintf("%s: %v", l.Geek, err))
		}
	}
	for _, l := range listeners {
		l.mu.Lock()
		got := append([]string(nil), l.got...)
		l.mu.Unlock()
		var want []string
		for _, s := range steps {
			for _, e := range s.Expect {
				if e == l.Geek {
					want = append(want, string(s.Body))
				}
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			out.OK = false
			out.Problems = append(out.Problems, fmt.Sprintf("%s received %d message(s), expected %d", l.Geek, len(got), len(want)))
		}
		out.Received[l.Geek] = rawList(got)
	}
	if opts.Keep {
		out.StateDir = dir
	}
	out.ElapsedMS = time.Since(start).Milliseconds()
	if err := render(opts, listeners, steps, out); err != nil {
		return err
	}
	if !out.OK {
		return cmdutil.Exit(cmdutil.ExitError, errors.New("the demo did not behave: "+strings.Join(out.Problems, "; ")))
	}
	return nil
}

// tempDirVariable names the variable that sets os.TempDir.
func tempDirVariable() string {
	if runtime.GOOS == "windows" {
		return "TMP"
	}
	return "TMPDIR"
}

// unwrapPath is the cause of a path error, whose path the message names
// already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fenceTimeout bounds the wait for a listener's pong.
const fenceTimeout = 10 * time.Second

// fence pings through the gateway's ping route and waits for the pong.
func fence(ctx context.Context, l *listener) error {
	if err := l.conn.SendJSON(map[string]string{"action": "ping"}); err != nil {
		return fmt.Errorf("sending a ping: %w", err)
	}
	t := time.NewTimer(fenceTimeout)
	defer t.Stop()
	select {
	case <-l.pong:
		return nil
	case <-l.conn.Done():
		return fmt.Errorf("the connection closed: %v", l.conn.Err())
	case <-t.C:
		return fmt.Errorf("no answer to a ping within %s", fenceTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isPong reports whether a frame is the gateway's answer to a ping.
func isPong(data []byte) bool {
	var r struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(data, &r) == nil && r.Type == "pong"
}

func rawList(s []string) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(s))
	for _, m := range s {
		out = append(out, json.RawMessage(m))
	}
	return out
}

func render(opts *Options, ls []*listener, steps []step, out Outcome) error {
	w := opts.IO.Out
	if opts.JSON {
		return cmdutil.PrintJSON(w, out)
	}
	u := ui.New(opts.IO)
	if u.Styled() {
		fmt.Fprintln(w, u.Title.Render("socks demo")+" "+u.Muted.Render("· local gateway "+out.Gateway))
	}
	rows := [][]string{}
	for i, s := range steps {
		for _, l := range ls {
			expected := false
			for _, e := range s.Expect {
				expected = expected || e == l.Geek
			}
			l.mu.Lock()
			received := false
			for _, g := range l.got {
				received = received || g == string(s.Body)
			}
			l.mu.Unlock()
			verdict := "received"
			if !received {
				verdict = "not received"
			}
			rows = append(rows, []string{
				fmt.Sprintf("#%d %s", i+1, s.Label),
				l.Geek + " (" + strings.Join(l.Topics, ",") + ")",
				verdict,
				u.Check(received == expected),
			})
		}
	}
	rows = append(rows, []string{"forged chatter ID", "mallory", map[bool]string{true: "refused (403)", false: "NOT refused"}[out.Refused], u.Check(out.Refused)})
	if err := u.Table([]string{"MESSAGE", "LISTENER", "OUTCOME", "OK"}, rows); err != nil {
		return err
	}
	if u.Styled() {
		verdict := u.Good.Render("everything behaved")
		if !out.OK {
			verdict = u.Bad.Render("something went wrong")
		}
		fmt.Fprintf(w, "%s in %dms\n", verdict, out.ElapsedMS)
		if out.StateDir != "" {
			fmt.Fprintln(w, u.Muted.Render("state kept in "+out.StateDir))
		}
	} else {
		if out.StateDir != "" {
			fmt.Fprintf(w, "state dir\t%s\n", out.StateDir)
		}
		// Piped output ends with a one-line verdict, for a log or a script.
		if out.OK {
			fmt.Fprintf(w, "ok: everything behaved in %dms\n", out.ElapsedMS)
		} else {
			fmt.Fprintf(w, "FAIL: %s\n", strings.Join(out.Problems, "; "))
		}
	}
	return nil
}
