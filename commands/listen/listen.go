// Package listen implements `socks listen`: see what a browser would see.
package listen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/ui"
	"github.com/socks-dev/socks/wsclient"
)

// Options are the inputs of `socks listen`.
type Options struct {
	IO      *iostreams.IOStreams
	Backend func(context.Context) (*backend.Backend, error)
	Now     func() time.Time

	Geek    string
	Topics  []string
	URL     string
	ID      string
	Count   int
	Timeout time.Duration
	JSON    bool
}

// NewCmdListen returns `socks listen`.
func NewCmdListen(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Backend: f.Backend, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "listen --geek NAME [--topic T]...",
		Short: "Connect as a geek and print every message that arrives",
		Long: `Listen connects to the gateway the way a browser does and prints every
message it receives: styled on a terminal, one JSON object per line when
piped or with --json.

The URL comes from the running local gateway, or --url. The chatter ID comes
from --id; without it, listen issues a short-lived one itself and revokes it
on exit.

Exit codes: 0 after --count messages or Ctrl-C; 4 when --timeout passed with
no message; 5 when the gateway refused the connection (401/403).`,
		Example: `  socks listen --geek Friendless --topic updates
  socks listen --geek Friendless --json | jq .body
  socks listen --geek Friendless --topic jobs --count 1 --timeout 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listenRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Geek, "geek", "g", "", "the user to connect as (required)")
	fl.StringArrayVarP(&opts.Topics, "topic", "t", nil, "topic to follow (repeatable; default every topic)")
	fl.StringVar(&opts.URL, "url", "", "WebSocket URL (default: the running local gateway)")
	fl.StringVar(&opts.ID, "id", "", "chatter ID to present (default: issue a short-lived one)")
	fl.IntVar(&opts.Count, "count", 0, "exit 0 after this many messages")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "exit 4 if no message arrives within this time")
	fl.BoolVar(&opts.JSON, "json", false, "one JSON object per line")
	_ = cmd.MarkFlagRequired("geek")
	return cmd
}

// Line is one --json output line.
type Line struct {
	Time   time.Time       `json:"time"`
	Kind   string          `json:"kind"`
	Body   json.RawMessage `json:"body,omitempty"`
	Text   string          `json:"text,omitempty"`
	Base64 []byte          `json:"base64,omitempty"`
}

func listenRun(ctx context.Context, opts *Options) error {
	if err := pubsub.ValidateGeek(opts.Geek); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	topics, err := pubsub.NormalizeTopics(opts.Topics)
	if err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if opts.Count < 0 || opts.Timeout < 0 {
		return cmdutil.FlagErrorf("--count and --timeout must not be negative")
	}
	base, secret := opts.URL, opts.ID
	if base == "" || secret == "" {
		b, err := opts.Backend(ctx)
		if err != nil {
			return err
		}
		if base == "" {
			if base, err = b.WebSocketURL(ctx); err != nil {
				return err
			}
		}
		if secret == "" {
			s, c, err := store.IssueChatterID(ctx, b.Store, opts.Geek, time.Hour, opts.Now())
			if err != nil {
				return err
			}
			secret = s
			defer func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_, _ = b.Store.RevokeChatterIDs(rctx, opts.Geek, []string{c.Hash})
			}()
		}
	}
	u, err := wsclient.ConnectURL(base, opts.Geek, secret, topics)
	if err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	conn, err := wsclient.Dial(ctx, u, wsclient.Options{})
	if err != nil {
		var he *wsclient.HandshakeError
		if errors.As(err, &he) {
			return cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("%w (%s)", he, hint(he.Status)))
		}
		return fmt.Errorf("connecting to %s: %w", base, err)
	}
	defer conn.Close()

	jsonOut := opts.JSON || !opts.IO.IsStdoutTTY()
	st := ui.New(opts.IO)
	if !jsonOut {
		fmt.Fprintf(opts.IO.Out, "%s %s as %s on %s\n", st.Good.Render("●"), "connected to "+st.Accent.Render(base), st.Accent.Render(opts.Geek), topicList(topics))
	}
	var timeout <-chan time.Time
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	got := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timeout:
			return cmdutil.Exit(cmdutil.ExitTimeout, fmt.Errorf("no message within %s", opts.Timeout))
		case f, ok := <-conn.Frames():
			if !ok {
				if err := conn.Err(); err != nil {
					return fmt.Errorf("connection closed: %w", err)
				}
				return errors.New("connection closed")
			}
			if err := printFrame(opts.IO.Out, st, f, jsonOut); err != nil {
				return err
			}
			got++
			timeout = nil
			if opts.Count > 0 && got >= opts.Count {
				return nil
			}
		}
	}
}

func topicList(t []string) string {
	if len(t) == 0 {
		return "every topic"
	}
	return fmt.Sprint(t)
}

func hint(status int) string {
	switch status {
	case 401:
		return "no chatter ID was presented: pass --id or let listen issue one"
	case 403:
		return "the chatter ID is unknown, revoked, expired, or for another geek: issue a new one with `socks chatter issue`"
	case 400:
		return "the geek or topic names were refused"
	}
	return "is the URL right?"
}

func printFrame(w io.Writer, st *ui.UI, f wsclient.Frame, jsonOut bool) error {
	line := Line{Time: f.At.UTC(), Kind: "message"}
	switch {
	case f.Binary || !utf8.Valid(f.Data):
		line.Kind, line.Base64 = "binary", f.Data
	case json.Valid(f.Data):
		line.Body = f.Data
	default:
		line.Text = string(f.Data)
	}
	if jsonOut {
		return json.NewEncoder(w).Encode(line)
	}
	var shown string
	switch {
	case line.Body != nil:
		var buf bytes.Buffer
		if err := json.Indent(&buf, line.Body, "", "  "); err == nil {
			shown = st.Code.Render(buf.String())
		} else {
			shown = string(line.Body)
		}
	case line.Base64 != nil:
		shown = st.Muted.Render(fmt.Sprintf("(binary, %d bytes) %x", len(f.Data), f.Data))
	default:
		shown = fmt.Sprintf("%q", line.Text)
	}
	_, err := fmt.Fprintf(w, "%s %s\n", st.Muted.Render(f.At.Local().Format("15:04:05.000")), shown)
	return err
}
