package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/socks-dev/socks/internal/atomicfile"
	"github.com/socks-dev/socks/internal/filelock"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/internal/unpriv"
	"github.com/socks-dev/socks/pubsub"
)

// deployURLs is the update socks deploy makes.
func deployURLs(p *Profile) {
	p.WebSocketURL = "wss://new.example/prod"
	p.CallbackURL = "https://new.example/prod"
}

// rewritten is what the full rewrite (new file, fallback) writes.
const rewritten = fileHeader

func TestSaveProfileEditsInPlace(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		profile string
		update  func(*Profile)
		want    string
		// wantBackup: the fallback rewrote the file and kept the original.
		wantBackup bool
	}{
		{
			name:    "comments, blank lines and the other profiles stay; the changed keys are rewritten on their lines",
			profile: "prod",
			file: `# my socks config
# second header line

default_profile = "prod" # the one I use

[profiles.dev]
state_dir = "/tmp/dev"   # scratch

# production, hand-tuned
[profiles.prod]
backend = "aws"
# keep in step with the AWS console
region = "eu-west-1"
websocket_url = "wss://old.example/prod" # set by deploy
callback_url  =  'https://old.example/prod'   # literal on purpose

# staging follows
[profiles.staging]
backend = "aws" # trailing
`,
			want: `# my socks config
# second header line

default_profile = "prod" # the one I use

[profiles.dev]
state_dir = "/tmp/dev"   # scratch

# production, hand-tuned
[profiles.prod]
backend = "aws"
# keep in step with the AWS console
region = "eu-west-1"
websocket_url = "wss://new.example/prod" # set by deploy
callback_url  =  'https://new.example/prod'   # literal on purpose

# staging follows
[profiles.staging]
backend = "aws" # trailing
`,
		},
		{
			name:    "CRLF line endings are kept, and an added key gets them too",
			profile: "prod",
			file:    "# crlf\r\n[profiles.dev]\r\nstate_dir = 'x'\r\n\r\n[profiles.prod]\r\nbackend = \"aws\" # mine\r\nwebsocket_url = \"wss://old\"\r\n\r\n[profiles.z]\r\nstack = \"z\"\r\n",
			want:    "# crlf\r\n[profiles.dev]\r\nstate_dir = 'x'\r\n\r\n[profiles.prod]\r\nbackend = \"aws\" # mine\r\nwebsocket_url = \"wss://new.example/prod\"\r\ncallback_url = \"https://new.example/prod\"\r\n\r\n[profiles.z]\r\nstack = \"z\"\r\n",
		},
		{
			name:    "keys the update adds go after the table's last key, indented like it, before the next table's comment",
			profile: "prod",
			file: `[profiles.prod]
  backend = "aws"
  region = "eu-west-1"   # Ireland

# the next one
[profiles.next]
stack = "n"
`,
			want: `[profiles.prod]
  backend = "aws"
  region = "eu-west-1"   # Ireland
  callback_url = "https://new.example/prod"
  websocket_url = "wss://new.example/prod"

# the next one
[profiles.next]
stack = "n"
`,
		},
		{
			name:    "a profile the update adds becomes a table at the end, also of a file with no final newline",
			profile: "prod",
			file:    "default_profile = \"dev\" # hi\n\n[profiles.dev]\nstate_dir = \"/d\"",
			update: func(p *Profile) {
				p.Backend, p.Stack, p.Region = BackendAWS, "prod", "eu-west-1"
				deployURLs(p)
			},
			want: `default_profile = "dev" # hi

[profiles.dev]
state_dir = "/d"

[profiles.prod]
backend = "aws"
stack = "prod"
region = "eu-west-1"
callback_url = "https://new.example/prod"
websocket_url = "wss://new.example/prod"
`,
		},
		{
			name:    "a quoted profile name with dots and spaces is found",
			profile: "eu.prod 1",
			file: `[profiles.eu]
stack = "not me"

[profiles."eu.prod 1"] # quoted
websocket_url = "wss://old"

[ profiles . 'eu' . prod ]
stack = "nor me"
`,
			want: `[profiles.eu]
stack = "not me"

[profiles."eu.prod 1"] # quoted
websocket_url = "wss://new.example/prod"
callback_url = "https://new.example/prod"

[ profiles . 'eu' . prod ]
stack = "nor me"
`,
		},
		{
			name:    "a new profile whose name needs quotes gets them",
			profile: `my prod.v2 "x"`,
			file:    "[profiles.dev]\nstack = \"d\"\n\n",
			want:    "[profiles.dev]\nstack = \"d\"\n\n[profiles.\"my prod.v2 \\\"x\\\"\"]\ncallback_url = \"https://new.example/prod\"\nwebsocket_url = \"wss://new.example/prod\"\n",
		},
		{
			name:    "# and = inside strings are not comments or keys",
			profile: "prod",
			file: `[profiles.prod]
stack = "a#b=c" # websocket_url = "decoy"
'websocket_url' = "wss://x/#frag=1" # a = "b" # c
aws_profile = 'p#1'
`,
			want: `[profiles.prod]
stack = "a#b=c" # websocket_url = "decoy"
'websocket_url' = "wss://new.example/prod" # a = "b" # c
aws_profile = 'p#1'
callback_url = "https://new.example/prod"
`,
		},
		{
			name:    "multi-line strings and arrays near the changed key are skipped whole, even when they look like TOML",
			profile: "prod",
			file: `[profiles.prod]
notes = """
[profiles.other]
websocket_url = "decoy" \"""
"""""
websocket_url = "wss://old"
lit = '''
callback_url = 'decoy'
'''
list = [
  "a", # callback_url = "decoy"
  ['[', "]"],
]

[profiles.prod.mapping]
topics = [
  "/detail/a", # first
  "/detail/b",
]
`,
			want: `[profiles.prod]
notes = """
[profiles.other]
websocket_url = "decoy" \"""
"""""
websocket_url = "wss://new.example/prod"
lit = '''
callback_url = 'decoy'
'''
list = [
  "a", # callback_url = "decoy"
  ['[', "]"],
]
callback_url = "https://new.example/prod"

[profiles.prod.mapping]
topics = [
  "/detail/a", # first
  "/detail/b",
]
`,
		},
		{
			name:    "the changed key as a multi-line string is replaced whole; the same key elsewhere is not touched",
			profile: "prod",
			file:    "\ufeff[profiles.dev]\nwebsocket_url = \"wss://dev\"\n[profiles.prod]\nwebsocket_url\t=\t\"\"\"\nwss://old\"\"\"  \t# was long\ncallback_url = \"https://old\"   \n[profiles.prod.mapping]\ntopics = [\"/d\"]\n[profiles.prod.other]\ncallback_url = \"https://not-mine\"\n[[profiles.prod.hooks]]\nx = 1\n",
			want:    "\ufeff[profiles.dev]\nwebsocket_url = \"wss://dev\"\n[profiles.prod]\nwebsocket_url\t=\t\"wss://new.example/prod\"  \t# was long\ncallback_url = \"https://new.example/prod\"   \n[profiles.prod.mapping]\ntopics = [\"/d\"]\n[profiles.prod.other]\ncallback_url = \"https://not-mine\"\n[[profiles.prod.hooks]]\nx = 1\n",
		},
		{
			name:    "unknown keys, at the top, in the profile and in their own tables, stay",
			profile: "prod",
			file: `editor = "vim"
[profiles.prod]
colour = "blue"
callback_url = "https://old"
[profiles.prod.future]
x = 1
[extra]
y = [1, 2]
`,
			want: `editor = "vim"
[profiles.prod]
colour = "blue"
callback_url = "https://new.example/prod"
websocket_url = "wss://new.example/prod"
[profiles.prod.future]
x = 1
[extra]
y = [1, 2]
`,
		},
		{
			name:    "a profile held only by its mapping sub-table gets its own table at the end",
			profile: "prod",
			file:    "[profiles.prod.mapping] # events\ntopics = [\"/detail/id\"]\n",
			want:    "[profiles.prod.mapping] # events\ntopics = [\"/detail/id\"]\n\n[profiles.prod]\ncallback_url = \"https://new.example/prod\"\nwebsocket_url = \"wss://new.example/prod\"\n",
		},
		{
			name:    "a key the update clears goes with its line; its neighbours stay",
			profile: "prod",
			file:    "[profiles.prod]\nstack = \"s\" # keep\nregion = \"eu-west-1\" # drop\n# after\n",
			update:  func(p *Profile) { p.Region = "" },
			want:    "[profiles.prod]\nstack = \"s\" # keep\n# after\n",
		},
		{
			name:    "a value that needs escapes is written as a basic string, even over a literal one",
			profile: "prod",
			file:    "[profiles.prod]\nstack = 'old' # c\n",
			update:  func(p *Profile) { p.Stack = "it's \"new\"\\\t" },
			want:    "[profiles.prod]\nstack = \"it's \\\"new\\\"\\\\\\t\" # c\n",
		},
		{
			name:       "an inline-table profile is rewritten whole, the original kept",
			profile:    "prod",
			file:       "# mine\nprofiles = { prod = { backend = \"aws\" }, dev = { stack = \"d\" } }\n",
			want:       rewritten + "[profiles]\n  [profiles.dev]\n    stack = \"d\"\n  [profiles.prod]\n    backend = \"aws\"\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
			wantBackup: true,
		},
		{
			name:       "a profile that is an inline table in [profiles] is rewritten whole",
			profile:    "prod",
			file:       "[profiles]\nprod = { region = \"eu-west-1\" } # x\n",
			want:       rewritten + "[profiles]\n  [profiles.prod]\n    region = \"eu-west-1\"\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
			wantBackup: true,
		},
		{
			name:       "a new profile next to inline-table profiles is rewritten whole too",
			profile:    "prod",
			file:       "profiles = { dev = { stack = \"d\" } }\n",
			want:       rewritten + "[profiles]\n  [profiles.dev]\n    stack = \"d\"\n  [profiles.prod]\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
			wantBackup: true,
		},
		{
			name:       "a profile written with dotted keys from [profiles] is rewritten whole",
			profile:    "prod",
			file:       "[profiles]\nprod.region = \"eu-west-1\"\n",
			want:       rewritten + "[profiles]\n  [profiles.prod]\n    region = \"eu-west-1\"\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
			wantBackup: true,
		},
		{
			name:       "a profile written with dotted keys at the top is rewritten whole",
			profile:    "prod",
			file:       "profiles.prod.stack = \"s\" # top\n",
			want:       rewritten + "[profiles]\n  [profiles.prod]\n    stack = \"s\"\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
			wantBackup: true,
		},
		{
			name:    "an update of the mapping is rewritten whole",
			profile: "prod",
			file:    "[profiles.prod] # c\nstack = \"s\"\n",
			update: func(p *Profile) {
				p.Mapping = &pubsub.Mapping{Topics: []string{"/detail/id"}}
			},
			want:       rewritten + "[profiles]\n  [profiles.prod]\n    stack = \"s\"\n    [profiles.prod.mapping]\n      topics = [\"/detail/id\"]\n      users = \"\"\n      body = \"\"\n",
			wantBackup: true,
		},
		{
			name:    "an empty file is written as a new one",
			profile: "prod",
			file:    "",
			want:    rewritten + "[profiles]\n  [profiles.prod]\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
		},
		{
			// The TOML library matches a key to a setting whatever its
			// case: a second spelling beside it would win or lose at random.
			name:    "a key spelt in another case is the setting's key, and is edited on its line",
			profile: "prod",
			file:    "[profiles.prod]\nWebSocket_URL = \"wss://old\" # mine\nCALLBACK_URL = 'https://old'\n",
			want:    "[profiles.prod]\nWebSocket_URL = \"wss://new.example/prod\" # mine\nCALLBACK_URL = 'https://new.example/prod'\n",
		},
		{
			name:    "a key spelt in another case that the update clears goes with its line",
			profile: "prod",
			file:    "[profiles.prod]\nStack = \"s\" # drop\nregion = \"r\"\n",
			update:  func(p *Profile) { p.Stack = "" },
			want:    "[profiles.prod]\nregion = \"r\"\n",
		},
		{
			name:    "a profiles table spelt in another case is the profiles table",
			profile: "prod",
			file:    "[Profiles.prod] # mine\nstack = \"s\"\n\n[PROFILES.dev]\nstack = \"d\"\n",
			want:    "[Profiles.prod] # mine\nstack = \"s\"\ncallback_url = \"https://new.example/prod\"\nwebsocket_url = \"wss://new.example/prod\"\n\n[PROFILES.dev]\nstack = \"d\"\n",
		},
		{
			name:       "a setting spelt twice in different cases is rewritten whole (either spelling could win)",
			profile:    "prod",
			file:       "[profiles.prod]\nwebsocket_url = \"wss://old\"\nWebSocket_URL = \"wss://old\"\n",
			want:       rewritten + "[profiles]\n  [profiles.prod]\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
			wantBackup: true,
		},
		{
			name:       "a profile's table written twice, in different cases, is rewritten whole (either could win)",
			profile:    "prod",
			file:       "[profiles.prod]\ncolour = \"blue\"\n[Profiles.prod]\ncolour = \"blue\"\n",
			want:       rewritten + "[profiles]\n  [profiles.prod]\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n",
			wantBackup: true,
		},
		{
			name:    "a file of only comments and blanks keeps them, and gets the table",
			profile: "prod",
			file:    "# just a comment\n",
			want:    "# just a comment\n\n[profiles.prod]\ncallback_url = \"https://new.example/prod\"\nwebsocket_url = \"wss://new.example/prod\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			update := tt.update
			if update == nil {
				update = deployURLs
			}
			intended := intendedFile(t, tt.file, tt.profile, update)
			warning, err := SaveProfile(path, tt.profile, update)
			if err != nil {
				t.Fatal(err)
			}
			got := readString(t, path)
			if got != tt.want {
				t.Errorf("file is\n%s\nwant\n%s", got, tt.want)
			}
			assertDecodes(t, got, intended)
			bak := path + ".bak"
			if tt.wantBackup {
				if readString(t, bak) != tt.file {
					t.Errorf("the backup does not hold the original")
				}
				if !strings.Contains(warning, "rewrote it whole") || !strings.Contains(warning, bak) {
					t.Errorf("warning = %q, want it to say the file was rewritten and where the original is", warning)
				}
			} else {
				if warning != "" {
					t.Errorf("warning = %q, want none", warning)
				}
				if _, err := os.Stat(bak); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a backup was written for an edit in place: %v", err)
				}
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

func TestSaveProfileMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "config.toml")
	warning, err := SaveProfile(path, "prod", deployURLs)
	if err != nil || warning != "" {
		t.Fatalf("warning %q, err %v", warning, err)
	}
	want := rewritten + "[profiles]\n  [profiles.prod]\n    callback_url = \"https://new.example/prod\"\n    websocket_url = \"wss://new.example/prod\"\n"
	if got := readString(t, path); got != want {
		t.Errorf("file is\n%s\nwant\n%s", got, want)
	}
	assertDecodes(t, readString(t, path), intendedFile(t, "", "prod", deployURLs))
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a new config file is private: mode %v, err %v", fi.Mode(), err)
	}
}

func TestSaveProfileRefusesBadFiles(t *testing.T) {
	for _, tt := range []struct {
		name, file, wantErr string
	}{
		{"a file that is not TOML", "[profiles.prod]\nstack = \n# mine\n", "config file "},
		{"a file whose profiles are not a table", "profiles = 3\n", "line 1: profiles must be a table of settings ([profiles.NAME]), not an integer"},
		{"a file whose profile is not a table", "[profiles]\nprod = \"x\" # mine\n", "config file "},
		{"a file with the profile's table twice", "[profiles.prod]\n[profiles.prod]\n", "config file "},
	} {
		t.Run(tt.name+" is an error and stays untouched", func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, err := SaveProfile(path, "prod", deployURLs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if got := readString(t, path); got != tt.file {
				t.Errorf("the file changed to %q", got)
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
	t.Run("a config path that cannot be read (a directory) is an error", func(t *testing.T) {
		path := t.TempDir()
		if _, err := SaveProfile(path, "prod", deployURLs); err == nil || !strings.Contains(err.Error(), "config file "+path) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSaveProfileLeavesUnchangedFileAlone(t *testing.T) {
	body := "[profiles.prod] # c\nwebsocket_url = 'wss://new.example/prod'\ncallback_url = \"https://new.example/prod\"\n"
	path := writeFile(t, body)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	// failCommits fails every write: none may be attempted.
	failCommits(t)
	if w, err := SaveProfile(path, "prod", deployURLs); err != nil || w != "" {
		t.Fatalf("warning %q, err %v", w, err)
	}
	if got := readString(t, path); got != body {
		t.Errorf("the file changed to %q", got)
	}
}

func TestSaveProfileKeepsModeAndLinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "socks.toml")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "[profiles.prod]\nstack = \"s\"\n"
	if err := os.WriteFile(real, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveProfile(link, "prod", deployURLs); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	fi, err := os.Stat(real)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, err %v: want 0640 kept", fi.Mode(), err)
	}
	want := body + "callback_url = \"https://new.example/prod\"\nwebsocket_url = \"wss://new.example/prod\"\n"
	if got := readString(t, real); got != want {
		t.Errorf("file is\n%s\nwant\n%s", got, want)
	}
}

// A save through a symlink takes the lock of the directory the file is
// in, which a save by its real path takes too.
func TestSaveProfileThroughALinkLocksTheRealDirectory(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "socks.toml")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "[profiles.prod]\nstack = \"s\"\n"
	if err := os.WriteFile(real, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	held, err := filelock.Within(time.Second, func() (*filelock.Lock, bool, error) { return filelock.TryExclusiveDir(filepath.Dir(real)) })
	if err != nil {
		t.Fatal(err)
	}
	saved := lockWait
	lockWait = 50 * time.Millisecond
	t.Cleanup(func() { lockWait = saved })
	_, err = SaveProfile(link, "prod", deployURLs)
	if err == nil || !strings.Contains(err.Error(), "another process has been saving into "+filepath.Dir(real)) {
		t.Fatalf("err = %v; want the save to wait for the lock on %s and give up", err, filepath.Dir(real))
	}
	if got := readString(t, real); got != body {
		t.Errorf("the file changed while another held its lock: %q", got)
	}
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveProfile(link, "prod", deployURLs); err != nil {
		t.Fatal(err)
	}
}

func TestSaveProfileNeverReplacesABackup(t *testing.T) {
	file := "profiles = { prod = { stack = \"s\" } }\n"
	path := writeFile(t, file)
	older := "# an older backup\n"
	if err := os.WriteFile(path+".bak", []byte(older), 0o600); err != nil {
		t.Fatal(err)
	}
	warning, err := SaveProfile(path, "prod", deployURLs)
	if err != nil {
		t.Fatal(err)
	}
	if readString(t, path+".bak") != older {
		t.Errorf("the older backup was replaced")
	}
	if readString(t, path+".bak.1") != file || !strings.Contains(warning, path+".bak.1") {
		t.Errorf("the original is not in %s.bak.1 (warning %q)", path, warning)
	}
	assertDecodes(t, readString(t, path), intendedFile(t, file, "prod", deployURLs))
}

// A config file on a file system without hard links (FAT or exFAT on a
// USB stick, some FUSE mounts, a Windows share) refuses the link that
// puts the backup in place: a save that must rewrite the file keeps the
// original all the same (made in place), rather than failing there.
func TestTheBackupIsKeptWhereHardLinksAreRefused(t *testing.T) {
	for _, linkErr := range []error{syscall.EPERM, syscall.ENOTSUP, syscall.EXDEV} {
		t.Run(linkErr.Error(), func(t *testing.T) {
			file := "profiles = { prod = { stack = \"s\" } }\n"
			path := writeFile(t, file)
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
			refuseLinks(t, linkErr)
			warning, err := SaveProfile(path, "prod", deployURLs)
			if err != nil {
				t.Fatalf("SaveProfile: %v", err)
			}
			if readString(t, path+".bak") != file || !strings.Contains(warning, path+".bak") {
				t.Errorf("the original is not in %s.bak (warning %q)", path, warning)
			}
			if fi, err := os.Stat(path + ".bak"); runtime.GOOS != "windows" && (err != nil || fi.Mode().Perm() != 0o640) {
				t.Errorf("backup: %v, %v; want the original's mode 0640", fi, err)
			}
			assertDecodes(t, readString(t, path), intendedFile(t, file, "prod", deployURLs))
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

func TestSaveProfileWriteFailureLeavesOriginal(t *testing.T) {
	for _, tt := range []struct{ name, file string }{
		{"an edit in place", "# mine\n[profiles.prod]\nstack = \"s\"\n"},
		{"a rewrite whose backup cannot be written", "profiles = { prod = { stack = \"s\" } } # mine\n"},
		{"a new file", ""},
	} {
		t.Run("when the last step of "+tt.name+" fails, the original is untouched", func(t *testing.T) {
			path := writeFile(t, tt.file)
			if tt.file == "" {
				path = filepath.Join(t.TempDir(), "config.toml")
			}
			failCommits(t)
			if _, err := SaveProfile(path, "prod", deployURLs); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("err = %v, want the injected failure", err)
			}
			if tt.file == "" {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a file was written: %v", err)
				}
			} else if got := readString(t, path); got != tt.file {
				t.Errorf("the file changed to %q", got)
			}
			if _, err := os.Stat(path + ".bak"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a half-made backup is left: %v", err)
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

// FuzzSaveProfile checks the scanner against the library: on any file the
// library decodes, an edit of a profile either decodes to the intended File
// or falls back; it never writes a file that reads otherwise.
func FuzzSaveProfile(f *testing.F) {
	f.Add("[profiles.prod]\nstack = \"s\" # c\n")
	f.Add("[profiles.\"a b\"]\nnotes = \"\"\"\nx = 1\n\"\"\"\n")
	f.Add("profiles.prod.region = 'r'\n")
	f.Add("a = [\n1, # x\n]\n[profiles.prod]\nwebsocket_url = 'w'\r\n")
	f.Fuzz(func(t *testing.T, file string) {
		var orig File
		if _, err := toml.Decode(file, &orig); err != nil {
			t.Skip()
		}
		path := writeFile(t, file)
		intended := intendedFile(t, file, "prod", deployURLs)
		if _, err := SaveProfile(path, "prod", deployURLs); err != nil {
			// Refused (profiles = '' reads as no profiles): untouched.
			if readString(t, path) != file {
				t.Fatalf("refused with %v, but changed the file", err)
			}
			return
		}
		assertDecodes(t, readString(t, path), intended)
	})
}

// FuzzSaveProfileKeepsBytes checks the promise of an edit in place byte by
// byte, without the scanner: an update of one key either rewrites the file
// whole (keeping the original as the backup) or changes exactly one span,
// and that span is the key's old value (a TOML string and nothing after
// it), or whole lines the save added (the key, and the profile's header
// when it was missing).
func FuzzSaveProfileKeepsBytes(f *testing.F) {
	for _, s := range []string{
		"[profiles.prod]\nstack = \"s\" # c\n",
		"[profiles.prod]\nwebsocket_url = 'old' # c\nx = 1\n",
		"[profiles.prod]\nwebsocket_url = \"\"\"\nold\"\"\" # c\n[profiles.prod.mapping]\ntopics = [\n\"a\", # x\n]\n",
		"[profiles.\"a b\"]\nnotes = \"\"\"\nx = 1\n\"\"\"\n",
		"a = [\n1, # x\n]\n[profiles.prod]\nwebsocket_url = 'w'\r\n",
		"\ufeff[ profiles . prod ] # h\r\n\tregion = 'r'\t# r\r\n[[profiles.prod.hooks]]\r\nx = {a = 1}\r\n",
		"[profiles.prod.mapping]\nusers = '/u'\n[profiles.prod]\nwebsocket_url_old = 'x'\n",
		"[profiles]\nprod.region = 'r'\n",
		"# [profiles.prod]\nt = '''\n[profiles.prod]\n'''\n[profiles.\"pro\\u0064\"]\nwebsocket_url = \"a\\nb\" #\n",
	} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, file string, which uint8) {
		var orig File
		if _, err := toml.Decode(file, &orig); err != nil || strings.Contains(file, "fuzz.invalid") {
			t.Skip()
		}
		var fields []profileField
		for _, pf := range profileFields {
			switch pf.key {
			case "websocket_url", "callback_url", "stack", "region":
				fields = append(fields, pf)
			}
		}
		field := fields[int(which)%len(fields)]
		const value = "wss://fuzz.invalid/\u03a9"
		update := func(p *Profile) { reflect.ValueOf(p).Elem().Field(field.index).SetString(value) }
		path := writeFile(t, file)
		intended := intendedFile(t, file, "prod", update)
		warning, err := SaveProfile(path, "prod", update)
		got := readString(t, path)
		if err != nil {
			// Refused (the profile is not a table): untouched.
			if got != file {
				t.Fatalf("refused with %v, but changed the file", err)
			}
			return
		}
		assertDecodes(t, got, intended)
		if file == "" {
			return // a new file, written whole
		}
		if warning != "" {
			if readString(t, path+".bak") != file {
				t.Fatalf("rewritten whole, but the backup does not hold the original")
			}
			return
		}
		if got == file {
			if orig.Profiles["prod"].string(field) != value {
				t.Fatalf("nothing was written")
			}
			return
		}
		checkOneSpan(t, file, got, field.key, value, orig.Profiles["prod"].string(field))
	})
}

// checkOneSpan fails unless edited is orig with either the value of key
// (old) replaced by value, written as a TOML string, or whole lines added
// that set key to value (and open the profile's table).
func checkOneSpan(t *testing.T, orig, edited, key, value, old string) {
	t.Helper()
	quoted := []string{quoteValue(value, ""), quoteValue(value, "'")}
	at, n := -1, 0
	for _, q := range quoted {
		if i := strings.Index(edited, q); i >= 0 {
			if strings.Count(edited, q) != 1 || at >= 0 {
				t.Fatalf("the new value is written more than once:\n%s", edited)
			}
			at, n = i, len(q)
		}
	}
	if at < 0 {
		t.Fatalf("the new value is not written as a string:\n%s", edited)
	}
	before, after := edited[:at], edited[at+n:]
	if strings.HasPrefix(orig, before) && strings.HasSuffix(orig[len(before):], after) {
		// A replacement: orig = before + oldText + after, and oldText is
		// a string that reads as old, with nothing (no comment) after it.
		oldText := orig[len(before) : len(orig)-len(after)]
		var v struct{ X []string }
		if _, err := toml.Decode("x = ["+oldText+"]", &v); err != nil || len(v.X) != 1 || v.X[0] != old ||
			!strings.HasSuffix(oldText, `"`) && !strings.HasSuffix(oldText, "'") {
			t.Fatalf("the replaced span %q is not just the old value %q (%v)\n%q\nbecame\n%q", oldText, old, err, orig, edited)
		}
		if !strings.HasSuffix(strings.TrimRight(before, " \t"), "=") {
			t.Fatalf("the replaced span %q does not follow an =:\n%q\nbecame\n%q", oldText, orig, edited)
		}
		return
	}
	// An addition: whole lines, of the key and maybe a header and blank
	// lines; every line of orig is kept, in order.
	ol, el := strings.SplitAfter(orig, "\n"), strings.SplitAfter(edited, "\n")
	i := 0
	for _, l := range el {
		switch {
		case i < len(ol) && l == ol[i]:
			i++
		case i == len(ol)-1 && ol[i] != "" && strings.TrimRight(l, "\r\n") == ol[i]:
			i++ // the last line, given the newline it lacked
		case strings.TrimSpace(l) == "" || strings.TrimSpace(l) == "[profiles.prod]" ||
			strings.TrimSpace(l) == key+" = "+quoted[0]:
		default:
			t.Fatalf("line %q is neither the original's nor added:\n%q\nbecame\n%q", l, orig, edited)
		}
	}
	if i < len(ol) && !(i == len(ol)-1 && ol[i] == "") {
		t.Fatalf("lines of the original are missing:\n%q\nbecame\n%q", orig, edited)
	}
}

// intendedFile is what file decodes to after update of profile name.
func intendedFile(t *testing.T, file, name string, update func(*Profile)) File {
	t.Helper()
	var f File
	if _, err := toml.Decode(file, &f); err != nil {
		t.Fatal(err)
	}
	if f.Profiles == nil {
		f.Profiles = map[string]Profile{}
	}
	p := f.Profiles[name]
	update(&p)
	f.Profiles[name] = p
	return f
}

func assertDecodes(t *testing.T, text string, want File) {
	t.Helper()
	var got File
	if _, err := toml.Decode(text, &got); err != nil {
		t.Fatalf("the saved file is not TOML: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the saved file decodes to\n%+v\nwant\n%+v", got, want)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// failCommits makes the last step of every write fail (as root, a
// read-only directory would not stop it).
func failCommits(t *testing.T) {
	t.Helper()
	files.Before = func(step atomicfile.Step, name string) error {
		switch step {
		case atomicfile.Rename, atomicfile.Link, atomicfile.InPlace:
			return errors.New("injected failure")
		}
		return nil
	}
	t.Cleanup(func() { files.Before = nil })
}

// refuseLinks makes every hard link fail with linkErr, as on a file
// system without them.
func refuseLinks(t *testing.T, linkErr error) {
	t.Helper()
	files.Before = func(step atomicfile.Step, name string) error {
		if step == atomicfile.Link {
			return &os.LinkError{Op: "link", New: name, Err: linkErr}
		}
		return nil
	}
	t.Cleanup(func() { files.Before = nil })
}

// TestMain lets TestSaveProfileConcurrentProcesses run this test binary as
// the separate processes that save at once.
func TestMain(m *testing.M) {
	if path := os.Getenv("SOCKS_TEST_SAVE_FILE"); path != "" {
		name := os.Getenv("SOCKS_TEST_SAVE_PROFILE")
		if os.Getenv("SOCKS_TEST_NO_DIR_LOCKS") != "" {
			tryLockDir = noDirLocks
		}
		for round := range saveRounds {
			if _, err := SaveProfile(path, name, func(p *Profile) {
				p.WebSocketURL = fmt.Sprintf("wss://%s/%d", name, round)
				p.CallbackURL = fmt.Sprintf("https://%s/%d", name, round)
			}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const saveRounds = 20

// noDirLocks is filelock.TryExclusiveDir where directories cannot be
// locked (Windows).
func noDirLocks(string) (*filelock.Lock, bool, error) { return nil, false, errors.ErrUnsupported }

func TestSaveProfileConcurrentProcesses(t *testing.T) {
	t.Run("with directory locks", func(t *testing.T) { saveConcurrently(t, false) })
	// Saves on Windows were not locked at all: only the check before the
	// rename stood between two saves.
	t.Run("where directories cannot be locked, as on Windows", func(t *testing.T) { saveConcurrently(t, true) })
}

func TestWithoutDirectoryLocksASaveWaitsForTheLockFile(t *testing.T) {
	saved, savedWait := tryLockDir, lockWait
	tryLockDir, lockWait = noDirLocks, 50*time.Millisecond
	t.Cleanup(func() { tryLockDir, lockWait = saved, savedWait })
	body := "[profiles.prod]\nstack = \"s\"\n"
	path := writeFile(t, body)
	held, err := filelock.Within(time.Second, func() (*filelock.Lock, bool, error) {
		return filelock.TryExclusive(filepath.Join(filepath.Dir(path), lockFileName))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SaveProfile(path, "prod", deployURLs); err == nil || !strings.Contains(err.Error(), "another process has been saving") {
		t.Fatalf("err = %v; want the save to wait for the lock file and give up", err)
	}
	if got := readString(t, path); got != body {
		t.Errorf("the file changed while another held the lock: %q", got)
	}
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveProfile(path, "prod", deployURLs); err != nil {
		t.Fatal(err)
	}
}

func saveConcurrently(t *testing.T, noDirLocks bool) {
	const head = "# shared, keep me\n[profiles.keep] # mine\nstack = \"k\" # k\n"
	path := writeFile(t, head)
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		outs[i] = new(bytes.Buffer)
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), "SOCKS_TEST_SAVE_FILE="+path, fmt.Sprintf("SOCKS_TEST_SAVE_PROFILE=p%d", i))
		if noDirLocks {
			cmds[i].Env = append(cmds[i].Env, "SOCKS_TEST_NO_DIR_LOCKS=1")
		}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i])
		}
	}
	got := readString(t, path)
	if !strings.HasPrefix(got, head) {
		t.Errorf("the hand-written part changed:\n%s", got)
	}
	var f File
	if _, err := toml.Decode(got, &f); err != nil {
		t.Fatal(err)
	}
	for i := range procs {
		name := fmt.Sprintf("p%d", i)
		want := fmt.Sprintf("wss://%s/%d", name, saveRounds-1)
		if p := f.Profiles[name]; p.WebSocketURL != want || p.CallbackURL != fmt.Sprintf("https://%s/%d", name, saveRounds-1) {
			t.Errorf("profile %s is %+v, want its last save (%s): a save was lost\n%s", name, p, want, got)
		}
	}
	if f.Profiles["keep"].Stack != "k" {
		t.Errorf("profile keep lost: %+v", f.Profiles["keep"])
	}
}

func TestVerifyEditRefusesWhatWasNotAsked(t *testing.T) {
	orig := "note = 1\n[profiles.prod]\nstack = \"s\"\n"
	var old File
	meta, err := toml.Decode(orig, &old)
	if err != nil {
		t.Fatal(err)
	}
	want := intendedFile(t, orig, "prod", deployURLs)
	newP := want.Profiles["prod"]
	urls := "callback_url = \"https://new.example/prod\"\nwebsocket_url = \"wss://new.example/prod\"\n"
	for _, tt := range []struct {
		name, edited string
		ok           bool
	}{
		{"the intended edit passes", orig + urls, true},
		{"an unknown key lost is refused", "[profiles.prod]\nstack = \"s\"\n" + urls, false},
		{"a key added that the update did not set is refused", orig + urls + "extra = 2\n", false},
		{"a value changed that the update did not change is refused", strings.Replace(orig, `"s"`, `"t"`, 1) + urls, false},
		{"text that is not TOML is refused", orig + urls + "[", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifyEdit([]byte(tt.edited), meta, want, "prod", old.Profiles["prod"], newP); got != tt.ok {
				t.Errorf("verifyEdit = %v, want %v", got, tt.ok)
			}
		})
	}
}

// A link whose file does not exist yet (a dotfile manager's link made
// before the first save) gets the file where it points, and stays a link;
// a loop of links is an error that writes nothing.
func TestSaveProfileThroughADanglingLink(t *testing.T) {
	dir := t.TempDir()
	// config.toml -> ../dotfiles/link.toml -> socks.toml, which is missing.
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "home", "config.toml")
	if err := os.Symlink(filepath.Join("..", "dotfiles", "link.toml"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dotfiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("socks.toml", filepath.Join(dir, "dotfiles", "link.toml")); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveProfile(link, "prod", deployURLs); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{link, filepath.Join(dir, "dotfiles", "link.toml")} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink: %v %v", l, fi.Mode(), err)
		}
	}
	real := filepath.Join(dir, "dotfiles", "socks.toml")
	got := readString(t, real)
	if !strings.Contains(got, "[profiles.prod]") || !strings.Contains(got, `websocket_url = "wss://new.example/prod"`) {
		t.Errorf("%s is\n%s\nwant the prod profile with the new URLs", real, got)
	}
	if fi, err := os.Stat(real); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, err %v: want a new config file private (0600)", fi.Mode(), err)
	}

	loop := filepath.Join(dir, "loop.toml")
	if err := os.Symlink("loop2.toml", loop); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop.toml", filepath.Join(dir, "loop2.toml")); err != nil {
		t.Fatal(err)
	}
	_, err := SaveProfile(loop, "prod", deployURLs)
	if err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("err = %v; want a loop of symbolic links refused", err)
	}
	if fi, err := os.Lstat(loop); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the looping link was replaced: %v %v", fi.Mode(), err)
	}
}

// A rename is durable only once its directory is synced: after a crash the
// save deploy reported could be gone. The directory is synced after the
// file is in place (the backup's too, before the rewrite replaces the
// original).
func TestSaveProfileSyncsTheDirectoryAfterTheRename(t *testing.T) {
	path := writeFile(t, "profiles = { prod = { stack = \"s\" } }\n")
	var synced []string
	files.Before = func(step atomicfile.Step, dir string) error {
		if step != atomicfile.SyncDir {
			return nil
		}
		if dir != filepath.Dir(path) {
			t.Errorf("synced %s, want %s", dir, filepath.Dir(path))
		}
		_, bakErr := os.Stat(path + ".bak")
		synced = append(synced, fmt.Sprintf("bak=%v file=%q", bakErr == nil, readString(t, path)))
		return nil
	}
	t.Cleanup(func() { files.Before = nil })
	if _, err := SaveProfile(path, "prod", deployURLs); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 2 || synced[0] != `bak=true file="profiles = { prod = { stack = \"s\" } }\n"` || !strings.Contains(synced[1], "wss://new.example/prod") {
		t.Errorf("synced %q, want the directory synced once the backup is made, then once the new file is in place", synced)
	}
}

// A save into a folder that is a file said "lstat PATH: not a directory",
// the path twice and a system call's name.
func TestASaveThatCannotReachTheFileSaysWhyInWords(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "socks")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(notADir, "config.toml")
	_, err := SaveProfile(path, "prod", deployURLs)
	if err == nil || err.Error() != "config file "+path+": not a directory" {
		t.Errorf("error = %v, want %q", err, "config file "+path+": not a directory")
	}
}

// A save read the file whole, however large, where every other read of it
// stops at 1 MiB.
func TestASaveRefusesAFileTooLargeToBeAConfigFile(t *testing.T) {
	body := "# " + strings.Repeat("x", maxConfigSize) + "\n[profiles.dev]\n"
	path := writeFile(t, body)
	_, err := SaveProfile(path, "dev", func(p *Profile) { p.Region = "r" })
	if err == nil || !strings.Contains(err.Error(), "config file "+path+" is larger than 1 MiB") {
		t.Errorf("error = %v, want the file refused as too large", err)
	}
	if readString(t, path) != body {
		t.Errorf("the file changed")
	}
}

// A FILE.bak that is not this file's (a big file of the user's, here a
// sparse 256 MiB one) was read whole to see whether it holds the original
// already: it is read only as far as the original's length.
func TestABackupIsComparedWithoutReadingItWhole(t *testing.T) {
	file := "profiles = { prod = { stack = \"s\" } }\n"
	path := writeFile(t, file)
	const big = 256 << 20
	f, err := os.Create(path + ".bak")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(big); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var warning string
	cost := allocated(func() { warning, err = SaveProfile(path, "prod", deployURLs) })
	if err != nil {
		t.Fatal(err)
	}
	if cost > 8<<20 {
		t.Errorf("the save cost %d bytes", cost)
	}
	if fi, err := os.Stat(path + ".bak"); err != nil || fi.Size() != big {
		t.Errorf("the other backup was touched: %v", err)
	}
	if readString(t, path+".bak.1") != file || !strings.Contains(warning, path+".bak.1") {
		t.Errorf("the original is not in %s.bak.1 (warning %q)", path, warning)
	}
}

// A config file the user made read-only (chmod a-w) was replaced all the
// same: the save renames a new file over it, which only the directory's
// permissions govern. A save that would change it is refused before
// anything is written (no temporary file, no backup), naming the file
// and the fix; the file keeps its bytes and its mode.
func TestASaveRefusesAConfigFileMadeReadOnly(t *testing.T) {
	// Root may write any file (access(2) says so): as root the test runs
	// in a child without that power.
	if !unpriv.Enter(t) {
		return
	}
	for _, tt := range []struct{ name, body string }{
		{"edited in place", "[profiles.prod] # mine\nstack = \"s\"\n"},
		{"rewritten whole (a backup first)", "profiles = { prod = { stack = \"s\" } }\n"},
		{"reached through a link", "[profiles.prod]\nstack = \"s\"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			real := writeFile(t, tt.body)
			path := real
			if strings.HasPrefix(tt.name, "reached through a link") {
				if runtime.GOOS == "windows" {
					t.Skip("symbolic links need privileges")
				}
				path = filepath.Join(t.TempDir(), "config.toml")
				if err := os.Symlink(real, path); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(real, 0o400); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(real, 0o600) }) // for Windows to remove it
			var steps []atomicfile.Step
			files.Before = func(step atomicfile.Step, name string) error {
				steps = append(steps, step)
				return nil
			}
			t.Cleanup(func() { files.Before = nil })
			w, err := SaveProfile(path, "prod", deployURLs)
			if err == nil || !strings.Contains(err.Error(), "config file "+path+" is not writable by this user") ||
				!strings.Contains(err.Error(), "socks will not replace") {
				t.Fatalf("warning %q, err %v; want the file named as not writable", w, err)
			}
			if fix := "(chmod u+w " + text.ShellWord(path) + ")"; runtime.GOOS != "windows" && !strings.Contains(err.Error(), fix) {
				t.Errorf("err = %v; want the fix %s", err, fix)
			}
			if len(steps) != 0 {
				t.Errorf("the save took steps %q; want none", steps)
			}
			if got := readString(t, real); got != tt.body {
				t.Errorf("the file changed to %q", got)
			}
			if fi, err := os.Stat(real); err != nil || fi.Mode().Perm()&0o200 != 0 || runtime.GOOS != "windows" && fi.Mode().Perm() != 0o400 {
				t.Errorf("mode %v, err %v; want 0400 kept", fi.Mode(), err)
			}
			entries, err := os.ReadDir(filepath.Dir(real))
			if err != nil || len(entries) != 1 {
				t.Errorf("the directory holds %v (%v); want the file alone", entries, err)
			}
		})
	}
}
