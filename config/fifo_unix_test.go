//go:build unix

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO at config.toml (or at --config) held every command in open()
// for ever, waiting for a writer, where one Ctrl-C or SIGTERM could not
// end it; a directory there said only "is a directory". Each is refused
// at once as a file error that names the file, says what it is and what
// to do, and a save leaves it alone.
func TestAConfigFileThatIsNoFileIsRefusedNotWaitedOn(t *testing.T) {
	xdg := t.TempDir()
	dir := filepath.Join(xdg, "socks")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.toml")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "config.toml")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	sub := t.TempDir()
	for _, c := range []struct {
		name  string
		flags Flags
		path  string
		what  string
	}{
		{"the default file", Flags{}, path, "a FIFO (named pipe)"},
		{"the default file, a profile asked for", Flags{ConfigProfile: "dev"}, path, "a FIFO (named pipe)"},
		{"--config", Flags{ConfigFile: path}, path, "a FIFO (named pipe)"},
		{"--config, a link to it", Flags{ConfigFile: link}, link, "a FIFO (named pipe)"},
		{"--config, a directory", Flags{ConfigFile: sub}, sub, "a directory"},
		{"--config /dev/zero", Flags{ConfigFile: "/dev/zero"}, "/dev/zero", "a device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Resolve(c.flags, env(map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": xdg}))
			var fe *FileError
			want := "config file " + c.path + " is " + c.what + ", not a file: "
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), EnvConfig) {
				t.Errorf("error = %v; want a file error starting %q and naming %s", err, want, EnvConfig)
			}
		})
	}
	if _, err := SaveProfile(path, "dev", func(p *Profile) { p.Region = "r" }); err == nil || !strings.Contains(err.Error(), "config file "+path+" is a FIFO (named pipe), not a file: ") {
		t.Errorf("a save into the FIFO = %v; want it refused, naming it", err)
	}
}

// A FIFO at config.toml.bak held a save that rewrote the file whole in
// open() for ever, as it looked whether the backup held the original: the
// save keeps its copy in config.toml.bak.1 instead.
func TestAFIFOAtTheBackupHoldsNoSave(t *testing.T) {
	// An inline table cannot be edited in place: the save keeps a backup.
	path := writeFile(t, "profiles = { dev = { region = \"a\" } }\n")
	if err := syscall.Mkfifo(path+".bak", 0o600); err != nil {
		t.Fatal(err)
	}
	warning, err := SaveProfile(path, "dev", func(p *Profile) { p.Region = "b" })
	if err != nil || !strings.Contains(warning, path+".bak.1") {
		t.Fatalf("SaveProfile = %q, %v; want the original kept in %s.bak.1", warning, err, path)
	}
	if b, err := os.ReadFile(path + ".bak.1"); err != nil || string(b) != "profiles = { dev = { region = \"a\" } }\n" {
		t.Errorf("%s.bak.1 = %q, %v; want the original", path, b, err)
	}
}
