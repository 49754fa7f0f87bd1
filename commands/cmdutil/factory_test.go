package cmdutil

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/iostreams"
)

// The warning about AWS settings the local backend does not use names the
// profile they came from, which is any string the config file holds: it
// was written to standard error raw, so a name holding an escape sequence
// set a terminal's title or hid the rest of the line.
func TestTheUnusedAWSSettingsWarningShowsAProfileNameEscaped(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte("[profiles.\"x\\u001b]0;pwned\\u0007y\"]\nstack = \"prod\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ios, _, _, errOut := iostreams.Test()
	ios.SetTTY(false, false, true)
	env := map[string]string{"HOME": dir, config.EnvStateDir: filepath.Join(dir, "state")}
	f := &Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] },
		Flags: config.Flags{ConfigFile: file, ConfigProfile: "x\x1b]0;pwned\x07y"}}
	defer f.Close()
	if _, err := f.Backend(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "stack (profile x") {
		t.Fatalf("stderr %q; want the warning naming stack", errOut)
	}
	if strings.ContainsAny(errOut.String(), "\x07") || strings.Contains(errOut.String(), "\x1b]") {
		t.Errorf("stderr holds the name's control characters raw: %q", errOut)
	}
}
