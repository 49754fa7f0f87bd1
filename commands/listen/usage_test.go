package listen_test

import (
	"context"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// TestCobrasRefusalsReadAsUsersSeeThem: what cobra refuses before listen
// sees its flags (a missing --geek) and what root refuses (a stray
// argument) is checked as the binary says it, through commands.Run:
// cobra's own "required flag(s) \"geek\" not set" and "unknown command
// \"extra\" for \"listen\"" were asserted here, words no user reads.
func TestCobrasRefusalsReadAsUsersSeeThem(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a missing --geek", []string{"listen"},
			"socks: --geek is required\nRun 'socks listen --help' for usage.\n"},
		{"a missing --geek, other flags given", []string{"listen", "--topic", "updates", "--no-input"},
			"socks: --geek is required\nRun 'socks listen --help' for usage.\n"},
		{"a stray argument", []string{"listen", "--geek", "a", "extra"},
			"socks: listen takes no arguments, but got \"extra\": a value with spaces needs quotes\nRun 'socks listen --help' for usage.\n"},
	} {
		t.Run(tc.name+" is refused in socks's words", func(t *testing.T) {
			ios, _, out, errOut := iostreams.Test()
			env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": t.TempDir()}
			f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
			code := commands.Run(context.Background(), f, tc.args)
			if code != cmdutil.ExitUsage {
				t.Errorf("exit %d; want %d", code, cmdutil.ExitUsage)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q; want nothing", out)
			}
			if got := errOut.String(); got != tc.want {
				t.Errorf("stderr %q; want %q", got, tc.want)
			}
		})
	}
}
