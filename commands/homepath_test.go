package commands_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/root"
	"github.com/socks-dev/socks/iostreams"
)

// pathFlags are the flags that take a file or a directory. A shell expands
// `--id-file ~/x` but not `--id-file=~/x` (nor a quoted "~/x"), and socks
// took such a value as a folder named "~" in the working directory.
var pathFlags = []struct{ command, flag string }{
	{"", "config"},
	{"", "state-dir"},
	{"listen", "id-file"},
	{"chatter revoke", "id-file"},
	{"publish", "body-file"},
	{"serve", "keys-file"},
	{"deploy", "lambda-zip"},
	{"client-js", "out"},
	{"docs", "man"},
	{"docs", "markdown"},
}

func homeRoot(env map[string]string) *cobra.Command {
	ios, _, _, _ := iostreams.Test()
	return root.NewCmdRoot(&cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now})
}

// Every flag that takes a path expands a ~ after "=", in the home folder
// of the environment socks was given, through the one mechanism (the flag
// is marked as a file or a directory); "-" stays standard input; and
// every flag named as a path is marked so, so that a new one cannot miss
// it.
func TestEveryPathFlagExpandsATildeAfterEquals(t *testing.T) {
	home := t.TempDir()
	for _, pf := range pathFlags {
		name := strings.TrimSpace(pf.command + " --" + pf.flag)
		t.Run(name, func(t *testing.T) {
			top := homeRoot(map[string]string{"HOME": home})
			c, _, err := top.Find(strings.Fields(pf.command))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.ParseFlags([]string{"--" + pf.flag + "=~/sub/x"}); err != nil {
				t.Fatal(err)
			}
			if got, want := c.Flags().Lookup(pf.flag).Value.String(), filepath.Join(home, "sub", "x"); got != want {
				t.Errorf("--%s=~/sub/x is %q; want %q", pf.flag, got, want)
			}
		})
	}
	t.Run("a dash is standard input still", func(t *testing.T) {
		top := homeRoot(map[string]string{"HOME": home})
		c, _, _ := top.Find([]string{"listen"})
		if err := c.ParseFlags([]string{"--id-file=-"}); err != nil {
			t.Fatal(err)
		}
		if got := c.Flags().Lookup("id-file").Value.String(); got != "-" {
			t.Errorf("--id-file=- is %q; want -", got)
		}
	})
	t.Run("every flag named as a path is marked as one", func(t *testing.T) {
		var walk func(c *cobra.Command)
		walk = func(c *cobra.Command) {
			c.Flags().VisitAll(func(f *pflag.Flag) {
				named := strings.HasSuffix(f.Name, "-file") || strings.HasSuffix(f.Name, "-dir") || strings.HasSuffix(f.Name, "-zip")
				listed := slices.ContainsFunc(pathFlags, func(p struct{ command, flag string }) bool { return p.flag == f.Name })
				if (named || listed) && !cmdutil.IsPathFlag(f) {
					t.Errorf("%s --%s takes a path but is not marked as one (MarkFlagFilename or MarkFlagDirname)", c.CommandPath(), f.Name)
				}
			})
			for _, s := range c.Commands() {
				walk(s)
			}
		}
		walk(homeRoot(map[string]string{"HOME": home}))
	})
}

// With no HOME, a ~ after "=" is a usage error that says why, not a
// folder named "~"; publish --body-file=~/b.json reads the file in HOME.
func TestATildePathFlagRunsAsTheShellWouldHaveIt(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "b.json"), []byte(`{"n":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	ios, _, out, errOut := iostreams.Test()
	env := map[string]string{"HOME": home, "SOCKS_STATE_DIR": state}
	f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
	code := commands.Run(context.Background(), f, []string{"publish", "--topic", "t", "--body-file=~/b.json", "--id", "m-1"})
	if code != 0 || strings.TrimSpace(out.String()) != "m-1" {
		t.Fatalf("publish --body-file=~/b.json: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	ios, _, _, errOut = iostreams.Test()
	env = map[string]string{"SOCKS_STATE_DIR": state}
	f = &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
	code = commands.Run(context.Background(), f, []string{"publish", "--topic", "t", "--body-file=~/b.json"})
	want := `--body-file "~/b.json": HOME is not set, so ~ cannot be expanded: write the whole path`
	if code != cmdutil.ExitUsage || !strings.Contains(errOut.String(), want) {
		t.Errorf("with no HOME: exit %d, stderr %q; want %d and %q", code, errOut, cmdutil.ExitUsage, want)
	}
	if _, err := os.Stat("~"); err == nil {
		t.Errorf("a folder named ~ was made in the working directory")
	}
}
