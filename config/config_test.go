package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleFile = `
default_profile = "dev"

[profiles.dev]
state_dir = "/tmp/socks-dev"

[profiles.prod]
backend = "aws"
region = "eu-west-1"
stack = "prod"
aws_profile = "company-prod"
callback_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
`

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolvePrecedence(t *testing.T) {
	file := writeFile(t, sampleFile)
	relFile := writeFile(t, "default_profile = \"p\"\n[profiles.p]\nstate_dir = \"state\"\n")
	tests := []struct {
		name    string
		flags   Flags
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "with no file and nothing set, the local backend in the XDG state dir is the default",
			env:  map[string]string{"HOME": "/home/g"},
			check: func(t *testing.T, c Config) {
				if c.Backend != BackendLocal || c.BackendSource != "default" || c.StateDir != "/home/g/.local/state/socks" || c.Profile != "" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name:  "the file's default profile applies when no profile is named",
			flags: Flags{ConfigFile: file},
			env:   map[string]string{"HOME": "/home/g"},
			check: func(t *testing.T, c Config) {
				if c.Profile != "dev" || c.StateDir != "/tmp/socks-dev" || c.Sources["state_dir"] != "profile dev" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name:  "a named profile selects AWS with all its settings",
			flags: Flags{ConfigFile: file, ConfigProfile: "prod"},
			env:   map[string]string{"HOME": "/home/g"},
			check: func(t *testing.T, c Config) {
				a := c.AWS
				if c.Backend != BackendAWS || c.BackendSource != "profile prod" || a.Region != "eu-west-1" || a.Stack != "prod" ||
					a.Profile != "company-prod" || !strings.HasSuffix(a.CallbackURL, "/prod") {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name:  "the environment beats the profile, and a flag beats both",
			flags: Flags{ConfigFile: file, ConfigProfile: "prod", Stack: "flagged"},
			env:   map[string]string{"HOME": "/home/g", EnvRegion: "us-west-2", EnvStack: "from-env"},
			check: func(t *testing.T, c Config) {
				if c.AWS.Region != "us-west-2" || c.Sources["region"] != "env" || c.AWS.Stack != "flagged" || c.Sources["stack"] != "flag" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			// AWS_REGION and AWS_PROFILE are every AWS tool's, often left
			// set in a shell: the profile socks was told to use names the
			// region and account on purpose (deploy went to the shell's
			// region and wrote it into the profile).
			name:  "the selected profile's region and aws_profile beat AWS_REGION, AWS_DEFAULT_REGION and AWS_PROFILE, and say so",
			flags: Flags{ConfigFile: file, ConfigProfile: "prod"},
			env:   map[string]string{"HOME": "/home/g", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-west-1", "AWS_PROFILE": "other"},
			check: func(t *testing.T, c Config) {
				a := c.AWS
				if a.Region != "eu-west-1" || c.Sources["region"] != "profile prod" || a.Profile != "company-prod" || c.Sources["aws_profile"] != "profile prod" {
					t.Errorf("region %q (%s), aws profile %q (%s); want the profile's", a.Region, c.Sources["region"], a.Profile, c.Sources["aws_profile"])
				}
				notes := strings.Join(c.Notes, "\n")
				for _, want := range []string{"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-west-1", "AWS_PROFILE=other", "profile prod"} {
					if !strings.Contains(notes, want) {
						t.Errorf("notes lack %q:\n%s", want, notes)
					}
				}
			},
		},
		{
			name:  "AWS_REGION and AWS_PROFILE apply where no socks setting names a region or profile",
			flags: Flags{ConfigFile: file, ConfigProfile: "dev"},
			env:   map[string]string{"HOME": "/home/g", "AWS_REGION": "us-east-1", "AWS_PROFILE": "other"},
			check: func(t *testing.T, c Config) {
				if c.AWS.Region != "us-east-1" || c.Sources["region"] != "env" || c.AWS.Profile != "" || len(c.Notes) != 0 {
					t.Errorf("region %q (%s), aws profile %q, notes %q; want AWS_REGION, the SDK's AWS_PROFILE, no note", c.AWS.Region, c.Sources["region"], c.AWS.Profile, c.Notes)
				}
			},
		},
		{
			name:  "an AWS_REGION equal to the profile's is no news",
			flags: Flags{ConfigFile: file, ConfigProfile: "prod"},
			env:   map[string]string{"HOME": "/home/g", "AWS_REGION": "eu-west-1"},
			check: func(t *testing.T, c Config) {
				if c.AWS.Region != "eu-west-1" || len(c.Notes) != 0 {
					t.Errorf("region %q, notes %q", c.AWS.Region, c.Notes)
				}
			},
		},
		{
			name:  "SOCKS_REGION and --profile still beat the profile",
			flags: Flags{ConfigFile: file, ConfigProfile: "prod", Profile: "flagged"},
			env:   map[string]string{"HOME": "/home/g", EnvRegion: "ap-south-1", "AWS_REGION": "us-east-1"},
			check: func(t *testing.T, c Config) {
				if c.AWS.Region != "ap-south-1" || c.AWS.Profile != "flagged" || len(c.Notes) != 0 {
					t.Errorf("region %q, aws profile %q, notes %q", c.AWS.Region, c.AWS.Profile, c.Notes)
				}
			},
		},
		{
			name:  "the profile can come from the environment and the file from the XDG config dir",
			env:   map[string]string{"HOME": "/home/g", "XDG_CONFIG_HOME": filepath.Dir(filepath.Dir(file)), EnvConfigProfile: "prod"},
			check: func(t *testing.T, c Config) {},
			// The file is not at $XDG_CONFIG_HOME/socks/config.toml, so the
			// profile cannot be found: the error names it.
			wantErr: `unknown config profile "prod": no config file was found`,
		},
		{
			name:    "an unknown profile names the ones there are",
			flags:   Flags{ConfigFile: file, ConfigProfile: "staging"},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `unknown config profile "staging": ` + file + ` has profiles dev, prod`,
		},
		{
			name:    "a config file that was named must exist",
			flags:   Flags{ConfigFile: "/nonexistent/socks.toml"},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: "config file /nonexistent/socks.toml does not exist",
		},
		{
			name:    "a misspelt setting is an error, not silently ignored",
			flags:   Flags{ConfigFile: writeFile(t, "[profiles.x]\nregoin = \"eu-west-1\"\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: "unknown setting profiles.x.regoin",
		},
		{
			name:  "a profile's ~/ state dir is in HOME, not a folder named ~",
			flags: Flags{ConfigFile: writeFile(t, "default_profile = \"p\"\n[profiles.p]\nstate_dir = \"~/socks-dev\"\n")},
			env:   map[string]string{"HOME": "/home/g"},
			check: func(t *testing.T, c Config) {
				if c.StateDir != "/home/g/socks-dev" {
					t.Errorf("state dir %q; want /home/g/socks-dev", c.StateDir)
				}
			},
		},
		{
			name:  "a profile's relative state dir is beside the config file, wherever socks runs",
			flags: Flags{ConfigFile: relFile},
			env:   map[string]string{"HOME": "/home/g"},
			check: func(t *testing.T, c Config) {
				if want := filepath.Join(filepath.Dir(relFile), "state"); c.StateDir != want {
					t.Errorf("state dir %q; want %q", c.StateDir, want)
				}
			},
		},
		{
			name:  "a relative --state-dir is from the current directory, as the shell's paths are",
			flags: Flags{ConfigFile: relFile, StateDir: "here"},
			env:   map[string]string{"HOME": "/home/g"},
			check: func(t *testing.T, c Config) {
				if want, _ := filepath.Abs("here"); c.StateDir != want {
					t.Errorf("state dir %q; want %q", c.StateDir, want)
				}
			},
		},
		{
			// The shell expands --state-dir ~/x but not --state-dir=~/x,
			// nor a quoted SOCKS_STATE_DIR="~/x" (a unit file, a
			// Dockerfile): a folder named ~ in the working directory
			// is never what was meant.
			name:  "a --state-dir=~/... the shell left alone is in HOME",
			flags: Flags{StateDir: "~/socks-dev"},
			env:   map[string]string{"HOME": "/home/g"},
			check: func(t *testing.T, c Config) {
				if c.StateDir != "/home/g/socks-dev" {
					t.Errorf("state dir %q; want /home/g/socks-dev", c.StateDir)
				}
			},
		},
		{
			name: "a SOCKS_STATE_DIR of ~/... is in HOME",
			env:  map[string]string{"HOME": "/home/g", EnvStateDir: "~/socks-env"},
			check: func(t *testing.T, c Config) {
				if c.StateDir != "/home/g/socks-env" {
					t.Errorf("state dir %q; want /home/g/socks-env", c.StateDir)
				}
			},
		},
		{
			name:    "a ~ state dir with no HOME is refused",
			flags:   Flags{ConfigFile: writeFile(t, "default_profile = \"p\"\n[profiles.p]\nstate_dir = \"~/x\"\n")},
			env:     map[string]string{},
			wantErr: "HOME is not set",
		},
		{
			name:    "profiles that are not a table are refused, not read as none",
			flags:   Flags{ConfigFile: writeFile(t, "profiles = 3\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: "line 1: profiles must be a table of settings ([profiles.NAME]), not an integer",
		},
		{
			name:    "a profile that is not a table is refused, not read as empty",
			flags:   Flags{ConfigFile: writeFile(t, "default_profile = \"prod\"\n[profiles]\nprod = \"eu-west-1\"\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `line 3: profiles.prod must be a table of settings ([profiles.prod]), not a string`,
		},
		{
			name:    "a setting of the wrong type says which, in TOML's words",
			flags:   Flags{ConfigFile: writeFile(t, "[profiles.p]\nstack = \"s\"\nregion = 3\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `, line 3: profiles.p.region must be a string in quotes, not an integer`,
		},
		{
			name:    "a default_profile of the wrong type says which",
			flags:   Flags{ConfigFile: writeFile(t, "default_profile = true\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `line 1: default_profile must be a string in quotes, not a boolean`,
		},
		{
			name:    "mapping topics that are not a list say so",
			flags:   Flags{ConfigFile: writeFile(t, "[profiles.p.mapping]\ntopics = \"/detail/id\"\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `line 2: profiles.p.mapping.topics must be a list of strings (["/detail/id"]), not a string`,
		},
		{
			name:    "a key given twice says where, without the library's name",
			flags:   Flags{ConfigFile: writeFile(t, "[profiles.p]\nregion = \"a\"\nregion = \"b\"\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `line 3: profiles.p.region is set twice (line 2 and line 3): keep one`,
		},
		// TOML's own words were "99999999999999999999 is out of range
		// for int64": neither the key nor what is allowed.
		{
			name:    "an integer out of range names the key and the range",
			flags:   Flags{ConfigFile: writeFile(t, "[profiles.p]\nstack = \"s\"\nregion = 99999999999999999999\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `, line 3: the number 99999999999999999999 given for profiles.p.region is out of range: a whole number in a TOML file must lie between -9223372036854775808 and 9223372036854775807 (and profiles.p.region must be a string in quotes)`,
		},
		{
			name:    "a negative integer out of range names a key socks does not know too",
			flags:   Flags{ConfigFile: writeFile(t, "[profiles.p]\nretries = -9_223_372_036_854_775_809\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `, line 2: the number -9_223_372_036_854_775_809 given for profiles.p.retries is out of range: a whole number in a TOML file must lie between -9223372036854775808 and 9223372036854775807`,
		},
		{
			name:    "a number with a fraction and an exponent out of range names the key and the range",
			flags:   Flags{ConfigFile: writeFile(t, "default_profile = 1.5e999\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `, line 1: the number 1.5e999 given for default_profile is out of range: a number with a fraction and an exponent in a TOML file must lie between -1.7976931348623157e+308 and 1.7976931348623157e+308 (and default_profile must be a string in quotes)`,
		},
		// 1e999 was "a number with a fraction": it has none.
		{
			name:    "a number with an exponent out of range is called so",
			flags:   Flags{ConfigFile: writeFile(t, "default_profile = 1e999\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `, line 1: the number 1e999 given for default_profile is out of range: a number with an exponent in a TOML file must lie between -1.7976931348623157e+308 and 1.7976931348623157e+308 (and default_profile must be a string in quotes)`,
		},
		{
			name:    "a number with a fraction out of range is called so",
			flags:   Flags{ConfigFile: writeFile(t, "default_profile = -1"+strings.Repeat("0", 400)+".5\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `is out of range: a number with a fraction in a TOML file must lie between`,
		},
		{
			name:    "a number with an exponent of the wrong type is not said to have a fraction",
			flags:   Flags{ConfigFile: writeFile(t, "[profiles.p]\nregion = 1e5\n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `, line 2: profiles.p.region must be a string in quotes, not a number with a fraction or an exponent`,
		},
		{
			name:    "a file that is not TOML says where",
			flags:   Flags{ConfigFile: writeFile(t, "backend = \n")},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: "config file ",
		},
		// README: "SOCKS_ATTEMPT_TIMEOUT=5s (any Go duration) changes the
		// bound". A bare 5 was silently the default of 15 s.
		{
			name:    "an AWS call's attempt bound that is not a duration is refused in words",
			env:     map[string]string{"HOME": "/home/g", EnvBackend: "aws", EnvAttemptTimeout: "5"},
			wantErr: `$SOCKS_ATTEMPT_TIMEOUT "5" is not a duration: give a number with a unit, as 5s or 1m`,
		},
		{
			name:    "an AWS call's attempt bound of 0 is refused",
			env:     map[string]string{"HOME": "/home/g", EnvBackend: "aws", EnvAttemptTimeout: "0s"},
			wantErr: `$SOCKS_ATTEMPT_TIMEOUT "0s" must be above 0`,
		},
		{
			// `socks broker` on the local backend posts through the same
			// Management API client, bounded the same way.
			name:    "the attempt bound is refused on the local backend too",
			env:     map[string]string{"HOME": "/home/g", EnvAttemptTimeout: "5"},
			wantErr: `$SOCKS_ATTEMPT_TIMEOUT "5" is not a duration: give a number with a unit, as 5s or 1m`,
		},
		{
			name: "an AWS call's attempt bound in words is taken",
			env:  map[string]string{"HOME": "/home/g", EnvBackend: "aws", EnvAttemptTimeout: "5s"},
			check: func(t *testing.T, c Config) {
				if c.Backend != BackendAWS {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name:    "an unknown backend is refused",
			flags:   Flags{Backend: "gcp"},
			env:     map[string]string{"HOME": "/home/g"},
			wantErr: `unknown backend "gcp"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Resolve(tt.flags, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				// In the user's words: not the TOML library's nor Go's.
				for _, leak := range []string{"toml: line", "last key", "int64", "destination has type", "config.Profile", "pubsub.Mapping", "slice"} {
					if strings.Contains(err.Error(), leak) {
						t.Errorf("the error shows internals (%q): %v", leak, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestDefaultConfigPathFollowsXDG(t *testing.T) {
	if got := DefaultConfigPath(env(map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"})); got != "/x/socks/config.toml" {
		t.Errorf("got %q", got)
	}
	if got := DefaultConfigPath(env(map[string]string{"HOME": "/h"})); got != "/h/.config/socks/config.toml" {
		t.Errorf("got %q", got)
	}
}

// The TOML library matches a key to a setting whatever its case, and of two
// spellings one silently won: [profiles.prod] and [Profiles.prod] lost the
// first table's region; Region = "b" after region = "a" read "a".
func TestAKeySpeltTwiceInDifferentCasesIsRefused(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"a setting", "[profiles.prod]\nregion = \"a\"\nRegion = \"b\"\n",
			", line 3: Region sets profile prod's region again (line 2 sets it as region)"},
		{"a profile's table", "[profiles.prod]\nregion = \"a\"\n\n[Profiles.prod]\nstack = \"s\"\n",
			", line 4: [Profiles.prod] is profile prod again (line 1 is [profiles.prod])"},
		{"default_profile", "default_profile = \"prod\"\nDefault_Profile = \"x\"\n[profiles.prod]\n[profiles.x]\n",
			", line 2: Default_Profile sets default_profile again (line 1 sets it as default_profile)"},
		{"a mapping's field", "[profiles.prod.mapping]\ntopics = [\"/a\"]\nTopics = [\"/b\"]\n",
			", line 3: Topics sets profile prod's mapping topics again (line 2 sets it as topics)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "prod"}, env(map[string]string{"HOME": "/h"}))
			var fe *FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "config file "+path+tt.want) || !strings.Contains(err.Error(), "keep one") {
				t.Fatalf("error = %v, want a file error containing %q and saying to keep one", err, tt.want)
			}
		})
	}
	// Different profiles under [profiles...] and [Profiles...] are merged
	// by the library, as a user means them: no error.
	path := writeFile(t, "[profiles.prod]\nregion = \"a\"\n[Profiles.dev]\nstack = \"s\"\n")
	c, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "prod"}, env(map[string]string{"HOME": "/h"}))
	if err != nil || c.AWS.Region != "a" {
		t.Fatalf("got %+v, %v", c.AWS, err)
	}
}

// A misspelt key was named among every key under it, without its line or
// the key that was meant.
func TestAnUnknownKeySaysItsLineAndTheNearestKnownOne(t *testing.T) {
	tests := []struct{ name, file, want, notWant string }{
		{"a typo", "[profiles.p]\nstack = \"s\"\nregoin = \"a\"\n",
			`, line 3: unknown setting profiles.p.regoin: did you mean region?`, ""},
		{"dashes for underscores", "[profiles.p]\nstate-dir = \"/s\"\n",
			`, line 2: unknown setting profiles.p.state-dir: did you mean state_dir?`, ""},
		{"a singular table", "[profile.p]\nregion = \"a\"\nstack = \"x\"\n",
			`, line 1: unknown setting profile: did you mean profiles?`, "profile.p.region"},
		{"a setting outside a profile", "region = \"a\"\n",
			`, line 1: unknown setting region: a profile's settings go in a table [profiles.NAME]`, ""},
		{"a mapping field", "[profiles.p.mapping]\ntopics = [\"/a\"]\nuserz = \"/u\"\n",
			`, line 3: unknown setting profiles.p.mapping.userz: did you mean users?`, ""},
		{"nothing near", "[profiles.p]\ncolour = \"blue\"\n",
			`, line 2: unknown setting profiles.p.colour (known: `, "did you mean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "p"}, env(map[string]string{"HOME": "/h"}))
			if err == nil || !strings.Contains(err.Error(), "config file "+path+tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error = %v, want it without %q", err, tt.notWant)
			}
		})
	}
}

// Windows sets USERPROFILE, not HOME: every command that needs the state
// dir failed there with "HOME is not set", and no config file was read.
func TestOnWindowsTheHomeIsUSERPROFILE(t *testing.T) {
	defer func(g string) { goos = g }(goos)
	goos = "windows"
	e := env(map[string]string{"USERPROFILE": `/Users/g`})
	c, err := Resolve(Flags{}, e)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("/Users/g", ".local", "state", "socks"); c.StateDir != want {
		t.Errorf("state dir = %q, want %q", c.StateDir, want)
	}
	if got, want := DefaultConfigPath(e), filepath.Join("/Users/g", ".config", "socks", "config.toml"); got != want {
		t.Errorf("config path = %q, want %q", got, want)
	}
	// HOME, when a shell (Git Bash, MSYS) sets it, still comes first.
	if got := DefaultConfigPath(env(map[string]string{"HOME": "/h", "USERPROFILE": "/Users/g"})); got != filepath.Join("/h", ".config", "socks", "config.toml") {
		t.Errorf("config path = %q, want it in HOME", got)
	}
	// Elsewhere USERPROFILE means nothing.
	goos = "linux"
	if _, err := Resolve(Flags{}, e); err == nil || !strings.Contains(err.Error(), "HOME is not set") {
		t.Errorf("error = %v, want HOME is not set", err)
	}
}

// The config file was read whole, whatever its size: --config pointed at a
// log or a disk image, or at /dev/zero, read until memory ran out.
func TestAConfigFileTooLargeToBeOneIsRefused(t *testing.T) {
	big := writeFile(t, "# "+strings.Repeat("x", maxConfigSize)+"\n")
	_, err := Resolve(Flags{ConfigFile: big}, env(map[string]string{"HOME": "/h"}))
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "config file "+big+" is larger than 1 MiB") {
		t.Fatalf("error = %v, want a file error saying it is too large", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		// Refused as what it is, before a byte is read.
		_, err := Resolve(Flags{ConfigFile: "/dev/zero"}, env(map[string]string{"HOME": "/h"}))
		if err == nil || !strings.Contains(err.Error(), "config file /dev/zero is a device, not a file") {
			t.Fatalf("error = %v, want /dev/zero refused as a device", err)
		}
	}
	// /dev/null, the usual way to say "no config file", is an empty one.
	if _, err := os.Stat("/dev/null"); err == nil {
		c, err := Resolve(Flags{ConfigFile: "/dev/null"}, env(map[string]string{"HOME": "/h"}))
		if err != nil || c.Profile != "" {
			t.Fatalf("got %+v, %v", c, err)
		}
	}
}

// An unknown profile named by the file's default_profile or by
// SOCKS_CONFIG_PROFILE said only `unknown config profile "nope"`, with a
// usage hint for a flag the user never gave.
func TestAnUnknownProfileSaysWhereItsNameCameFrom(t *testing.T) {
	path := writeFile(t, "# mine\ndefault_profile = \"nope\"\n[profiles.prod]\n")
	_, err := Resolve(Flags{ConfigFile: path}, env(map[string]string{"HOME": "/h"}))
	var fe *FileError
	want := "config file " + path + ", line 2: default_profile is \"nope\", a profile the file does not have (it has profiles prod)"
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want a file error containing %q", err, want)
	}
	_, err = Resolve(Flags{ConfigFile: path}, env(map[string]string{"HOME": "/h", EnvConfigProfile: "stagin"}))
	want = `unknown config profile "stagin": ` + path + ` has profiles prod; the name is from SOCKS_CONFIG_PROFILE`
	if err == nil || !strings.Contains(err.Error(), want) || errors.As(err, &fe) {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// A key or table written twice said the TOML library's "Key
// 'profiles.p.region' has already been defined", without the other line.
func TestAKeyWrittenTwiceSaysBothLines(t *testing.T) {
	tests := []struct{ file, want string }{
		{"[profiles.p]\nregion = \"a\"\n# mine\nregion = \"b\"\n", `, line 4: profiles.p.region is set twice (line 2 and line 4): keep one`},
		{"[profiles.p]\nregion = \"a\"\n\n[profiles.p]\nstack = \"b\"\n", `, line 4: [profiles.p] is written twice (line 1 and line 4), which TOML does not allow: make them one table`},
	}
	for _, tt := range tests {
		path := writeFile(t, tt.file)
		_, err := Resolve(Flags{ConfigFile: path}, env(map[string]string{"HOME": "/h"}))
		if err == nil || err.Error() != "config file "+path+tt.want {
			t.Errorf("error = %v, want %q", err, "config file "+path+tt.want)
		}
	}
}

// docs/deploy.md's first command, `socks deploy ... --config-profile prod`,
// failed on a machine with no config file ("unknown config profile"), though
// deploy saves the URLs into that profile, creating it. A command that saves
// (Flags.NewProfile) takes a profile the file lacks as new, unless its name
// is a near miss of one the file has.
func TestAProfileDeployWillSaveMayBeNew(t *testing.T) {
	xdg := t.TempDir()
	e := env(map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": xdg})
	c, err := Resolve(Flags{ConfigProfile: "prod", NewProfile: true}, e)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(xdg, "socks", "config.toml"); c.Profile != "prod" || !c.NewProfile || c.ConfigFile != want {
		t.Errorf("got profile %q new=%v file %q, want new profile prod in %s", c.Profile, c.NewProfile, c.ConfigFile, want)
	}
	if _, err := Resolve(Flags{ConfigProfile: "prod"}, e); err == nil || !strings.Contains(err.Error(), `unknown config profile "prod"`) {
		t.Errorf("without NewProfile: %v, want the profile unknown", err)
	}

	path := writeFile(t, "[profiles.staging]\nregion = \"eu-west-1\"\n")
	c, err = Resolve(Flags{ConfigFile: path, NewProfile: true}, env(map[string]string{"HOME": "/h", EnvConfigProfile: "prod"}))
	if err != nil || c.Profile != "prod" || !c.NewProfile || c.ConfigFile != path || c.AWS.Region != "" {
		t.Errorf("a profile the file lacks: %+v, %v", c, err)
	}
	c, err = Resolve(Flags{ConfigFile: path, ConfigProfile: "staging", NewProfile: true}, e)
	if err != nil || c.NewProfile || c.AWS.Region != "eu-west-1" {
		t.Errorf("a profile the file has is not new: %+v, %v", c, err)
	}
	// A typo would deploy with none of staging's settings.
	if _, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "stagign", NewProfile: true}, e); err == nil || !strings.Contains(err.Error(), "did you mean staging?") {
		t.Errorf("a near miss: %v, want it refused", err)
	}
	// default_profile names what the file should have.
	bad := writeFile(t, "default_profile = \"prod\"\n")
	if _, err := Resolve(Flags{ConfigFile: bad, NewProfile: true}, e); err == nil {
		t.Error("a default_profile the file lacks was taken as new")
	}
}

// "no config file was found" did not say where socks looked, nor that it
// looked nowhere (HOME and XDG_CONFIG_HOME unset).
func TestAnUnknownProfileWithNoFileSaysWhereSocksLooked(t *testing.T) {
	_, err := Resolve(Flags{ConfigProfile: "prod", StateDir: "/s"}, env(map[string]string{"HOME": "/h"}))
	want := `unknown config profile "prod": no config file was found at /h/.config/socks/config.toml (--config or SOCKS_CONFIG names another)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
	_, err = Resolve(Flags{ConfigProfile: "prod", StateDir: "/s"}, env(nil))
	want = `unknown config profile "prod": no config file was found: neither XDG_CONFIG_HOME nor HOME is set, so socks looked nowhere (name it with --config or SOCKS_CONFIG)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// A new profile deploy refused as a near miss of one the file has (prod2
// beside prod, us beside eu) said only "did you mean prod?":
// nothing told a user who did mean a new profile how to make deploy take
// it. The refusal says now that an empty table of that name, added to the
// file, makes it one the file has; and it does.
func TestANearMissDeployRefusesSaysHowToCreateItAnyway(t *testing.T) {
	for _, tt := range []struct{ have, name, table string }{
		{"prod", "prod2", "[profiles.prod2]"},
		{"eu", "us", "[profiles.us]"},
		{`"my.prof"`, "my.prof2", `[profiles."my.prof2"]`},
	} {
		path := writeFile(t, "[profiles."+tt.have+"]\nregion = \"eu-west-1\"\n")
		e := env(map[string]string{"HOME": "/h"})
		_, err := Resolve(Flags{ConfigFile: path, ConfigProfile: tt.name, NewProfile: true}, e)
		if err == nil || !strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "add an empty "+tt.table+" to "+path) {
			t.Errorf("%s beside %s: %v; want it refused, saying to add %s to %s", tt.name, tt.have, err, tt.table, path)
			continue
		}
		// What the error says to do, done.
		body, _ := os.ReadFile(path)
		if err := os.WriteFile(path, append(body, "\n"+tt.table+"\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Resolve(Flags{ConfigFile: path, ConfigProfile: tt.name, NewProfile: true}, e)
		if err != nil || c.Profile != tt.name || c.AWS.Region != "" {
			t.Errorf("%s added as an empty table: %+v, %v", tt.name, c, err)
		}
	}
	// Commands that do not save say nothing of making one.
	path := writeFile(t, "[profiles.prod]\n")
	if _, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "prod2"}, env(nil)); err == nil || strings.Contains(err.Error(), "add an empty") {
		t.Errorf("outside deploy: %v", err)
	}
}

// Deploy creates the config file it saves into when missing, but not one
// named by --config (a typo there would write the URLs somewhere no other
// command reads): it refused it with "does not exist" alone, and a user
// starting a project's own config file for its first deploy was not told
// how to go on. The refusal says now to create it empty first; and then
// the profile is new in it.
func TestAMissingConfigFileNamedForDeploySaysToCreateIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.toml")
	e := env(map[string]string{"HOME": "/h"})
	_, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "prod", NewProfile: true}, e)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "create it empty first") {
		t.Fatalf("deploy with --config naming no file: %v; want it refused, saying to create the file empty first", err)
	}
	if _, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "prod"}, e); err == nil || strings.Contains(err.Error(), "create it empty") {
		t.Errorf("outside deploy: %v; want the file refused as missing, with no word of creating it", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "prod", NewProfile: true}, e)
	if err != nil || !c.NewProfile || c.ConfigFile != path {
		t.Errorf("deploy with --config naming an empty file: %+v, %v; want the new profile prod in it", c, err)
	}
}

// TestANearMissMatchesDashAndUnderscoreAlike: the near-miss rule took '-'
// for '_' and case aside in the name given but not in the profile's own,
// so "site_eu_west_prod" was four letters off "site-eu-west-prod" and
// nothing was suggested, nor for "my-us-east-dev" beside
// "My_US_East_Dev".
func TestANearMissMatchesDashAndUnderscoreAlike(t *testing.T) {
	path := writeFile(t, "[profiles.site-eu-west-prod]\nbackend = \"local\"\n[profiles.My_US_East_Dev]\nbackend = \"local\"\n")
	for name, want := range map[string]string{
		"site_eu_west_prod":  "site-eu-west-prod",
		"SITE_EU_WEST_PROD":  "site-eu-west-prod",
		"site_eu_west_prodd": "site-eu-west-prod",
		"my-us-east-dev":     "My_US_East_Dev",
	} {
		_, err := Resolve(Flags{ConfigFile: path, ConfigProfile: name}, env(map[string]string{"HOME": t.TempDir()}))
		if err == nil || !strings.Contains(err.Error(), "did you mean "+want+"?") {
			t.Errorf("profile %s: %v; want it to suggest %s", name, err, want)
		}
	}
	for key, want := range map[string]string{"dynamodb-endpoint-url": "dynamodb_endpoint_url", "STATE-DIR": "state_dir"} {
		_, err := Resolve(Flags{ConfigFile: writeFile(t, "[profiles.p]\n"+key+" = \"x\"\n"), ConfigProfile: "p"}, env(map[string]string{"HOME": t.TempDir()}))
		if err == nil || !strings.Contains(err.Error(), "did you mean "+want+"?") {
			t.Errorf("key %s: %v; want it to suggest %s", key, err, want)
		}
	}
}

// An unknown backend said only `unknown backend "aws "`, with a usage hint
// for the command: from a profile, no flag fixes it, and from the
// environment the user looked for a flag never given.
func TestAnUnknownBackendSaysWhereItCameFrom(t *testing.T) {
	path := writeFile(t, "[profiles.p]\nbackend = \"aws \"\n")
	_, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "p"}, env(map[string]string{"HOME": "/h"}))
	var fe *FileError
	want := `unknown backend "aws " (backend of profile p in config file ` + path + `)`
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want a file error containing %q", err, want)
	}
	_, err = Resolve(Flags{}, env(map[string]string{"HOME": "/h", EnvBackend: "awss"}))
	want = `unknown backend "awss" ($SOCKS_BACKEND)`
	if err == nil || !strings.Contains(err.Error(), want) || errors.As(err, &fe) {
		t.Errorf("error = %v, want %q", err, want)
	}
	_, err = Resolve(Flags{Backend: "gcp"}, env(map[string]string{"HOME": "/h"}))
	want = `unknown backend "gcp" (--backend)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// An unknown backend was shown lowercased (--backend AWz said "awz"): the
// error quotes it as the user wrote it, while a known one is still taken
// in any case.
func TestAnUnknownBackendIsShownAsWritten(t *testing.T) {
	_, err := Resolve(Flags{Backend: "AWz"}, env(map[string]string{"HOME": "/h"}))
	want := `unknown backend "AWz" (--backend)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want %q", err, want)
	}
	_, err = Resolve(Flags{}, env(map[string]string{"HOME": "/h", EnvBackend: "Lokal"}))
	want = `unknown backend "Lokal" ($SOCKS_BACKEND)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want %q", err, want)
	}
	c, err := Resolve(Flags{Backend: "Local"}, env(map[string]string{"HOME": "/h"}))
	if err != nil || c.Backend != BackendLocal {
		t.Errorf("--backend Local: backend %q, error %v; want %q", c.Backend, err, BackendLocal)
	}
}

// --state-dir=~/x (no shell expands ~ after "=") and a quoted
// SOCKS_STATE_DIR="~/x" are in HOME, but --config=~/x and SOCKS_CONFIG="~/x"
// named a folder "~" in the working directory: "config file ~/x does not
// exist".
func TestAConfigFileNamedWithATildeIsInHome(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "socks.toml"), []byte("[profiles.p]\nstack = \"tilde\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags Flags
		env   map[string]string
	}{
		{"flag", Flags{ConfigFile: "~/socks.toml", ConfigProfile: "p"}, nil},
		{"environment", Flags{ConfigProfile: "p"}, map[string]string{EnvConfig: "~/socks.toml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{"HOME": home}
			for k, v := range tc.env {
				e[k] = v
			}
			c, err := Resolve(tc.flags, env(e))
			if err != nil {
				t.Fatal(err)
			}
			if c.AWS.Stack != "tilde" || c.ConfigFile != filepath.Join(home, "socks.toml") {
				t.Errorf("stack %q from %q; want the profile's, from %s", c.AWS.Stack, c.ConfigFile, filepath.Join(home, "socks.toml"))
			}
		})
	}
}

// A missing config file said "(from --config or SOCKS_CONFIG)", leaving the
// user to find which of the two named it.
func TestAMissingConfigFileSaysWhatNamedIt(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Resolve(Flags{ConfigFile: missing}, env(map[string]string{"HOME": "/h"}))
	if want := "config file " + missing + " does not exist (from --config)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v; want %q", err, want)
	}
	_, err = Resolve(Flags{}, env(map[string]string{"HOME": "/h", EnvConfig: missing}))
	if want := "config file " + missing + " does not exist (from $SOCKS_CONFIG)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v; want %q", err, want)
	}
}

// Origin names the source that won, for every setting, in each place of
// the precedence (flag, environment, profile, default). The region has
// three variables: SOCKS_REGION, and the SDK's AWS_REGION and
// AWS_DEFAULT_REGION, which come after the profile; a region from
// AWS_REGION was named "region", the key, where the user looks for
// a variable.
func TestOriginNamesTheSourceThatWon(t *testing.T) {
	path := writeFile(t, "[profiles.p]\nbackend = \"aws\"\nstate_dir = \"/s\"\nstack = \"ps\"\nregion = \"eu-west-1\"\n"+
		"endpoint_url = \"http://127.0.0.1:1\"\ndynamodb_endpoint_url = \"http://127.0.0.1:2\"\nsqs_endpoint_url = \"http://127.0.0.1:3\"\n"+
		"aws_profile = \"ap\"\ncallback_url = \"https://c\"\nwebsocket_url = \"wss://w\"\n")
	inFile := func(key string) string { return key + " of profile p in config file " + path }
	all := Flags{Backend: "aws", StateDir: "/f", Stack: "fs", Region: "us-east-1", Endpoint: "http://127.0.0.1:4",
		DynamoDBEndpoint: "http://127.0.0.1:5", SQSEndpoint: "http://127.0.0.1:6", Profile: "fp", Callback: "https://fc", WebSocket: "wss://fw"}
	allEnv := map[string]string{EnvBackend: "aws", EnvStateDir: "/e", EnvStack: "es", EnvRegion: "us-east-2", EnvEndpointURL: "http://127.0.0.1:7",
		EnvDynamoDBEndpointURL: "http://127.0.0.1:8", EnvSQSEndpointURL: "http://127.0.0.1:9", EnvProfile: "ep", EnvCallback: "https://ec", EnvWebSocket: "wss://ew",
		"AWS_REGION": "ap-south-1"}
	keys := []struct{ key, flag, env string }{
		{"backend", "--backend", "$" + EnvBackend},
		{"state_dir", "--state-dir", "$" + EnvStateDir},
		{"stack", "--stack", "$" + EnvStack},
		{"region", "--region", "$" + EnvRegion},
		{"endpoint_url", "--endpoint-url", "$" + EnvEndpointURL},
		{"dynamodb_endpoint_url", "--dynamodb-endpoint-url", "$" + EnvDynamoDBEndpointURL},
		{"sqs_endpoint_url", "--sqs-endpoint-url", "$" + EnvSQSEndpointURL},
		{"aws_profile", "--profile", "$" + EnvProfile},
		{"callback_url", "--callback-url", "$" + EnvCallback},
		{"websocket_url", "--websocket-url", "$" + EnvWebSocket},
	}
	for _, tc := range []struct {
		name  string
		flags Flags
		env   map[string]string
		want  func(key, flag, env string) string
	}{
		{"flags over everything", all, allEnv, func(_, flag, _ string) string { return flag }},
		{"environment over the profile", Flags{}, allEnv, func(_, _, env string) string { return env }},
		{"the profile over AWS_REGION", Flags{}, map[string]string{"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "ap-south-2"}, func(key, _, _ string) string { return inFile(key) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{"HOME": "/h", EnvConfigProfile: "p"}
			maps.Copy(e, tc.env)
			c, err := Resolve(Flags{ConfigFile: path}, env(e))
			if tc.flags != (Flags{}) {
				f := tc.flags
				f.ConfigFile = path
				c, err = Resolve(f, env(e))
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if got, want := c.Origin(k.key), tc.want(k.key, k.flag, k.env); got != want {
					t.Errorf("Origin(%q) = %q; want %q", k.key, got, want)
				}
			}
		})
	}
	// With no socks setting, the SDK's variables give the region, each
	// named as itself; nothing at all names the flag that would set it.
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "eu-south-1"}, "$AWS_REGION"},
		{map[string]string{"AWS_DEFAULT_REGION": "eu-south-1"}, "$AWS_DEFAULT_REGION"},
		{map[string]string{}, "--region"},
	} {
		e := map[string]string{"HOME": "/h"}
		maps.Copy(e, tc.env)
		c, err := Resolve(Flags{Backend: "aws"}, env(e))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Origin("region"); got != tc.want {
			t.Errorf("%v: Origin(region) = %q; want %q", tc.env, got, tc.want)
		}
	}
	// A default is changed with the flag.
	c, err := Resolve(Flags{}, env(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"stack": "--stack", "state_dir": "--state-dir", "backend": "--backend"} {
		if got := c.Origin(key); got != want {
			t.Errorf("default: Origin(%q) = %q; want %q", key, got, want)
		}
	}
}

// ~ is expanded the same way in each path socks takes: --state-dir,
// SOCKS_STATE_DIR, a profile's state_dir, --config and SOCKS_CONFIG.
// "~" and "~/x" are in the home folder, and on Windows "~\x" as well (no
// shell there expands it: cmd.exe never does); "~user/x" and "./~" are
// taken as written.
func TestATildeIsExpandedAlikeEverywhere(t *testing.T) {
	defer func(g string) { goos = g }(goos)
	for _, tc := range []struct {
		goos, path, want string
	}{
		{"linux", "~", "/h"},
		{"linux", "~/x", "/h/x"},
		{"linux", `~\x`, `~\x`},
		{"linux", "~user/x", "~user/x"},
		{"linux", "./~", "~"},
		{"windows", `~\x`, "/h/x"},
		{"windows", "~/x", "/h/x"},
		{"windows", "~user/x", "~user/x"},
	} {
		goos = tc.goos
		// The config file is not read here: what it is named is.
		cfgDir := t.TempDir()
		cfgFile := filepath.Join(cfgDir, "config.toml")
		if err := os.WriteFile(cfgFile, []byte("[profiles.p]\nstate_dir = '"+tc.path+"'\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		want := tc.want
		if !filepath.IsAbs(want) {
			want = filepath.Join(cfgDir, want) // a profile's relative path is from the file's folder
		}
		c, err := Resolve(Flags{ConfigFile: cfgFile, ConfigProfile: "p"}, env(map[string]string{"HOME": "/h"}))
		if err != nil || c.StateDir != want {
			t.Errorf("%s: state_dir %q = %q, %v; want %q", tc.goos, tc.path, c.StateDir, err, want)
		}
		wd, _ := os.Getwd()
		want = tc.want
		if !filepath.IsAbs(want) {
			want = filepath.Join(wd, want)
		}
		c, err = Resolve(Flags{StateDir: tc.path}, env(map[string]string{"HOME": "/h"}))
		if err != nil || c.StateDir != want {
			t.Errorf("%s: --state-dir %q = %q, %v; want %q", tc.goos, tc.path, c.StateDir, err, want)
		}
		c, err = Resolve(Flags{}, env(map[string]string{"HOME": "/h", EnvStateDir: tc.path}))
		if err != nil || c.StateDir != want {
			t.Errorf("%s: %s %q = %q, %v; want %q", tc.goos, EnvStateDir, tc.path, c.StateDir, err, want)
		}
		// The config file: named, it does not exist, and the error says
		// where socks looked.
		want = tc.path + "/c.toml" // as written
		if filepath.IsAbs(tc.want) {
			want = filepath.Join(tc.want, "c.toml")
		}
		_, err = Resolve(Flags{ConfigFile: tc.path + "/c.toml"}, env(map[string]string{"HOME": "/h"}))
		if err == nil || !strings.Contains(err.Error(), "config file "+want+" does not exist") {
			t.Errorf("%s: --config %q: %v; want it looked for at %s", tc.goos, tc.path+"/c.toml", err, want)
		}
		_, err = Resolve(Flags{}, env(map[string]string{"HOME": "/h", EnvConfig: tc.path + "/c.toml"}))
		if err == nil || !strings.Contains(err.Error(), "config file "+want+" does not exist") {
			t.Errorf("%s: %s %q: %v; want it looked for at %s", tc.goos, EnvConfig, tc.path+"/c.toml", err, want)
		}
	}
}

// Origins names several settings, those of one profile once with it.
func TestOriginsNameSettingsOfOneProfileOnce(t *testing.T) {
	path := writeFile(t, "[profiles.p]\nbackend = \"aws\"\nstack = \"ps\"\nregion = \"eu-west-1\"\n")
	for _, tc := range []struct {
		flags Flags
		env   map[string]string
		want  string
	}{
		{Flags{ConfigFile: path, ConfigProfile: "p"}, nil, "stack and region of profile p in config file " + path},
		{Flags{ConfigFile: path, ConfigProfile: "p"}, map[string]string{EnvStack: "es"}, "$SOCKS_STACK and region of profile p in config file " + path},
		{Flags{ConfigFile: path, ConfigProfile: "p", Region: "us-east-1"}, nil, "stack of profile p in config file " + path + " and --region"},
		{Flags{Backend: "aws"}, map[string]string{"AWS_REGION": "us-east-1"}, "--stack and $AWS_REGION"},
	} {
		e := map[string]string{"HOME": "/h"}
		maps.Copy(e, tc.env)
		c, err := Resolve(tc.flags, env(e))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Origins("stack", "region"); got != tc.want {
			t.Errorf("Origins = %q; want %q", got, tc.want)
		}
	}
}

// ExpandHome is the one expansion of ~ every path socks takes goes
// through: "-" (standard input) and "~user" are left as written, and with
// no home folder a ~ is refused, not taken as a folder named "~".
func TestExpandHome(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"~", "/h"},
		{"~/x/y", "/h/x/y"},
		{"-", "-"},
		{"", ""},
		{"~user/x", "~user/x"},
		{"a/~/b", "a/~/b"},
	} {
		got, err := ExpandHome(tc.path, env(map[string]string{"HOME": "/h"}))
		if err != nil || got != filepath.FromSlash(tc.want) {
			t.Errorf("ExpandHome(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	if got, err := ExpandHome("~/x", env(map[string]string{})); err == nil || !strings.Contains(err.Error(), "HOME is not set") {
		t.Errorf("ExpandHome(~/x) with no HOME = %q, %v; want HOME is not set", got, err)
	}
	if got, err := ExpandHome("-", env(map[string]string{})); err != nil || got != "-" {
		t.Errorf("ExpandHome(-) with no HOME = %q, %v; want - as is", got, err)
	}
}

// A ~ that cannot be expanded (no HOME) in $SOCKS_STATE_DIR or
// $SOCKS_CONFIG is a value of a variable socks cannot take: it names the
// variable and is an *EnvError (no usage hint: no flag is wrong). From
// --state-dir or --config it names the flag and is no EnvError or
// FileError (the usage hint stays).
func TestAnUnexpandableTildeNamesWhereItCameFrom(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags Flags
		env   map[string]string
		want  string
		isEnv bool
	}{
		{"--state-dir", Flags{StateDir: "~/s"}, nil, `--state-dir "~/s": HOME is not set`, false},
		{"$SOCKS_STATE_DIR", Flags{}, map[string]string{EnvStateDir: "~/s"}, `$SOCKS_STATE_DIR "~/s": HOME is not set`, true},
		{"--config", Flags{ConfigFile: "~/c.toml", StateDir: "/s"}, nil, `--config "~/c.toml": HOME is not set`, false},
		{"$SOCKS_CONFIG", Flags{StateDir: "/s"}, map[string]string{EnvConfig: "~/c.toml"}, `$SOCKS_CONFIG "~/c.toml": HOME is not set`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.flags, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want %q", err, tc.want)
			}
			var envErr *EnvError
			var fileErr *FileError
			if errors.As(err, &envErr) != tc.isEnv || errors.As(err, &fileErr) {
				t.Errorf("error %v: EnvError %v, FileError %v; want EnvError %v and no FileError", err, errors.As(err, &envErr), errors.As(err, &fileErr), tc.isEnv)
			}
		})
	}
}
