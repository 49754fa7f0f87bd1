package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestEventMappingComesFromTheProfileOrTheEnvironment(t *testing.T) {
	file := writeFile(t, `
[profiles.site]
[profiles.site.mapping]
topics = ["/detail/entityId"]
users = "/detail/userId"
`)
	t.Run("the profile's mapping is used and checked", func(t *testing.T) {
		c, err := Resolve(Flags{ConfigFile: file, ConfigProfile: "site"}, env(map[string]string{"HOME": t.TempDir()}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Mapping == nil || !slices.Equal(c.Mapping.Topics, []string{"/detail/entityId"}) || c.Mapping.Users != "/detail/userId" || c.Sources["mapping"] != "profile site" {
			t.Fatalf("mapping %+v from %q", c.Mapping, c.Sources["mapping"])
		}
	})
	t.Run("SOCKS_EVENT_MAPPING beats the profile", func(t *testing.T) {
		c, err := Resolve(Flags{ConfigFile: file, ConfigProfile: "site"}, env(map[string]string{"HOME": t.TempDir(), EnvMapping: `{"topics":["orders","/detail-type"]}`}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Mapping == nil || !slices.Equal(c.Mapping.Topics, []string{"orders", "/detail-type"}) || c.Mapping.Users != "" || c.Sources["mapping"] != "env" {
			t.Fatalf("mapping %+v from %q", c.Mapping, c.Sources["mapping"])
		}
	})
	t.Run("no mapping is nil", func(t *testing.T) {
		c, err := Resolve(Flags{}, env(map[string]string{"HOME": t.TempDir()}))
		if err != nil || c.Mapping != nil {
			t.Fatalf("mapping %+v, %v", c.Mapping, err)
		}
	})
	for _, tt := range []struct{ name, file, env, want string }{
		{"a users path that is not a pointer", "[profiles.site.mapping]\ntopics = [\"/detail/entityId\"]\nusers = \"detail.userId\"\n", "",
			`event mapping from profile site: mapping users "detail.userId" is not a JSON pointer`},
		{"a mapping without topics", "[profiles.site.mapping]\nusers = \"/detail/userId\"\n", "", "mapping topics is empty"},
		{"an unknown key", "[profiles.site.mapping]\ntopics = [\"a\"]\nuser = \"/detail/userId\"\n", "", "unknown setting profiles.site.mapping.user"},
		{"an environment mapping that is not JSON", "[profiles.site]\n", "topics=/detail/entityId", "$SOCKS_EVENT_MAPPING is not valid JSON"},
		{"an environment mapping with an unknown field", "[profiles.site]\n", `{"topic":"/detail/entityId"}`, `$SOCKS_EVENT_MAPPING has an unknown field "topic" (known: topics, users, body)`},
		{"an environment mapping with topics that are not a list", "[profiles.site]\n", `{"topics":"/detail/entityId"}`, `$SOCKS_EVENT_MAPPING has "topics" as a string; it must be a list of strings`},
		// encoding/json matches keys whatever their case, and the last
		// one counted, silently.
		{"an environment mapping with topics twice, in two cases", "[profiles.site]\n", `{"topics":["a"],"users":"/detail/u","Topics":["b"]}`,
			`$SOCKS_EVENT_MAPPING sets "Topics" after "topics"; keys match whatever their case, so only one of them would count: keep one`},
		// encoding/json folds "ſ" (long s) to "s" too; an escape is the
		// key it stands for.
		{"an environment mapping with users twice, once with a long s", "[profiles.site]\n", `{"topics":["a"],"users":"/detail/u","uſers":"/detail/v"}`,
			`$SOCKS_EVENT_MAPPING sets "uſers" after "users"`},
		// Dotless i is no i to encoding/json: an unknown field, not a twin.
		{"an environment mapping with topics and a dotless-i twin", "[profiles.site]\n", `{"topics":["a"],"topıcs":["b"]}`,
			`$SOCKS_EVENT_MAPPING has an unknown field "topıcs"`},
		{"an environment mapping with a key twice, once escaped", "[profiles.site]\n", `{"topics":["a"],"\u0074opics":["b"]}`,
			`$SOCKS_EVENT_MAPPING sets "topics" twice`},
		{"an environment mapping with a key twice", "[profiles.site]\n", `{"body":"/detail","topics":["a"],"body":"/detail/x"}`,
			`$SOCKS_EVENT_MAPPING sets "body" twice; only one of them would count: keep one`},
		// Named as every other variable holding a value socks refuses:
		// with its $.
		{"an environment mapping whose users is not a pointer", "[profiles.site]\n", `{"topics":["/a"],"users":"u"}`,
			`event mapping from $SOCKS_EVENT_MAPPING: mapping users "u" is not a JSON pointer`},
	} {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			_, err := Resolve(Flags{ConfigFile: writeFile(t, tt.file), ConfigProfile: "site"}, env(map[string]string{"HOME": t.TempDir(), EnvMapping: tt.env}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			for _, leak := range []string{"json:", "Go struct", "invalid character", "[]string"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("the error shows Go internals (%q): %v", leak, err)
				}
			}
		})
	}
}

// A bad mapping in a profile said "event mapping from profile site: ..."
// without the file, and came as a usage mistake ("Run 'socks config
// --help'"), though no flag fixes it: the config file does.
func TestABadMappingOfAProfileIsAFileError(t *testing.T) {
	path := writeFile(t, "[profiles.site.mapping]\ntopics = [\"/detail/entityId\"]\nusers = \"detail.userId\"\n")
	_, err := Resolve(Flags{ConfigFile: path, ConfigProfile: "site"}, env(map[string]string{"HOME": t.TempDir()}))
	var fe *FileError
	want := "config file " + path + `: event mapping from profile site: mapping users "detail.userId" is not a JSON pointer`
	if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v; want a file error starting %q", err, want)
	}
	// From the environment it stays a usage mistake of the variable's.
	_, err = Resolve(Flags{}, env(map[string]string{"HOME": t.TempDir(), EnvMapping: `{"topics":["/a"],"users":"u"}`}))
	if err == nil || errors.As(err, &fe) {
		t.Errorf("error = %v; want one that is not a file error", err)
	}
}
