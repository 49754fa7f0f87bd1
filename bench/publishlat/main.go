// Command publishlat measures issue 10's second target as it is worded: a
// message from a separate `socks publish` process reaching a listener,
// timed from starting the process to the listener's receipt, against the
// time a `socks version` process takes, started and waited for the same
// way. `socks bench` times publishing from its own process, with its queue
// already open: the start of a process, its config and its state file are
// not in its figure, and `socks version` plus that figure left out what
// `socks publish` does before it sends.
//
// It prints one JSON object: the milliseconds of each publish, of each
// publish after -idle of silence, and of each `socks version`, also after
// -idle of silence (a process started after a silence is slower whatever
// it does).
//
//	go run ./bench/publishlat -bin bin/socks -state-dir DIR -ws ws://127.0.0.1:PORT/
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Result is what publishlat prints.
type Result struct {
	PublishMs     []float64 `json:"publishMs"`
	IdlePublishMs []float64 `json:"idlePublishMs"`
	IdleMs        float64   `json:"idleMs"`
	VersionMs     []float64 `json:"versionMs"`
	// IdleVersionMs are `socks version` processes each after -idle of
	// silence: what a process start alone costs after one.
	IdleVersionMs []float64 `json:"idleVersionMs"`
}

func main() {
	bin := flag.String("bin", "", "the socks binary")
	stateDir := flag.String("state-dir", "", "the state dir of the running `socks serve`")
	ws := flag.String("ws", "", "the WebSocket URL that `socks serve` printed")
	n := flag.Int("n", 20, "publishes (and `socks version` runs)")
	idleN := flag.Int("idle-samples", 2, "publishes more, each after -idle of silence")
	idle := flag.Duration("idle", 2*time.Second, "the silence before each idle sample")
	timeout := flag.Duration("timeout", time.Minute, "longest wait for one message")
	flag.Parse()
	if *bin == "" || *stateDir == "" || *ws == "" {
		fmt.Fprintln(os.Stderr, "publishlat: give -bin, -state-dir and -ws")
		os.Exit(2)
	}
	res, err := run(*bin, *stateDir, *ws, *n, *idleN, *idle, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "publishlat:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func run(bin, stateDir, wsURL string, n, idleN int, idle, timeout time.Duration) (Result, error) {
	socks := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"--state-dir", stateDir}, args...)...)
		cmd.Stderr = os.Stderr
		return cmd
	}
	geek := fmt.Sprintf("publishlat-%d", os.Getpid())
	out, err := socks("chatter", "issue", "--geek", geek, "--json").Output()
	if err != nil {
		return Result{}, fmt.Errorf("issuing a chatter ID: %w", err)
	}
	var issued struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &issued); err != nil || issued.ID == "" {
		return Result{}, fmt.Errorf("socks chatter issue printed %q", out)
	}
	defer func() { _ = socks("chatter", "revoke", "--geek", geek, "--all").Run() }()
	conn, _, err := websocket.DefaultDialer.Dial(wsURL+"?geek="+geek+"&id="+issued.ID+"&topic="+geek, nil)
	if err != nil {
		return Result{}, fmt.Errorf("connecting to %s: %w", wsURL, err)
	}
	defer conn.Close()
	frames := make(chan string, 16)
	go func() {
		defer close(frames)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(data)
		}
	}()
	// one starts `socks publish` and returns the time until the listener
	// has its message.
	one := func(seq int) (float64, error) {
		token := fmt.Sprintf("%s-seq-%d-end", geek, seq)
		cmd := socks("publish", "--topic", geek, "--message", token)
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		defer func() { _ = cmd.Wait() }()
		deadline := time.After(timeout)
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					return 0, errors.New("the listener's connection closed")
				}
				if strings.Contains(f, token) {
					return ms(time.Since(start)), nil
				}
			case <-deadline:
				return 0, fmt.Errorf("message %d did not arrive within %s: is socks serve running on %s?", seq, timeout, stateDir)
			}
		}
	}
	res := Result{IdleMs: ms(idle)}
	// The first one is not timed: the subscription is in place once it
	// arrives.
	if _, err := one(-1); err != nil {
		return res, err
	}
	for i := range n {
		d, err := one(i)
		if err != nil {
			return res, err
		}
		res.PublishMs = append(res.PublishMs, d)
	}
	for i := range idleN {
		time.Sleep(idle)
		d, err := one(n + i)
		if err != nil {
			return res, err
		}
		res.IdlePublishMs = append(res.IdlePublishMs, d)
	}
	version := func() (float64, error) {
		start := time.Now()
		if err := socks("version").Run(); err != nil {
			return 0, fmt.Errorf("socks version: %w", err)
		}
		return ms(time.Since(start)), nil
	}
	for range n {
		d, err := version()
		if err != nil {
			return res, err
		}
		res.VersionMs = append(res.VersionMs, d)
	}
	for range idleN {
		time.Sleep(idle)
		d, err := version()
		if err != nil {
			return res, err
		}
		res.IdleVersionMs = append(res.IdleVersionMs, d)
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
