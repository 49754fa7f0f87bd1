package config

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzConfigFileErrorsAreInWords decodes any config file: decodeFile never
// panics, and its refusal names the file and says what is wrong without
// the TOML library's or Go's own words (docs/reliability.md: "a config
// file that does not parse, has a misspelt key or a value of the wrong
// type ... exit 2 naming the file").
func FuzzConfigFileErrorsAreInWords(f *testing.F) {
	for _, s := range []string{
		sampleFile,
		"[profiles.dev]\nstate_dir = 7\n",
		"[profiles.dev]\ntopics = [1, \"a\"]\n",
		"[profiles.dev.mapping]\ntopics = \"x\"\n",
		"profiles = 3\n",
		"default_profile = [\n",
		"[profiles.dev]\n[profiles.dev]\n",
		"a = 1979-05-27T07:32:00Z\n[profiles.x.mapping]\nusers = {a = 1}\n",
		"\xff = 1\n",
		"[profiles.dev]\nstate_dir = 99999999999999999999\n",
		"[profiles.dev.mapping]\ntopics = [\"a\", -0x8000000000000001]\n",
		"[profiles.dev]\nx = {y = 1e400}\n",
		"default_profile = 1e999\n",
		"[profile.p]\nregoin = 1\n",
		"[profiles.p]\nregion = 'a'\n[profiles.p]\n[\"profiles\".'p']\nregion = 1\nregion = 2\n",
		"[profiles.p]\nRegion = \"a\"\nregion = \"b\"\n[Profiles.p.Mapping]\n",
	} {
		f.Add(s)
	}
	const path = "/home/geek/.config/socks/config.toml"
	f.Fuzz(func(t *testing.T, src string) {
		var file File
		md, err := decodeFile(path, []byte(src), &file)
		if err == nil {
			// What loadProfile checks next: keys socks does not know,
			// and keys written twice in different cases.
			err = unknownSetting(md, []byte(src))
			if err == nil {
				err = caseTwins(md, []byte(src))
			}
			if err == nil {
				return
			}
			err = fmt.Errorf("config file %s%w", path, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "config file "+path) {
			t.Fatalf("the refusal %q does not name the file", msg)
		}
		for _, leak := range []string{"toml:", "incompatible types", "destination has type", "%!", "map[string]interface", "[]interface", "reflect", "panic", "int64", "float64", "out of range for"} {
			if strings.Contains(msg, leak) {
				t.Fatalf("src %q: the refusal %q shows the library's words (%q)", src, msg, leak)
			}
		}
		// A number out of range says what the range is.
		if strings.Contains(msg, "out of range") && !strings.Contains(msg, "must lie between") {
			t.Fatalf("src %q: the refusal %q does not say the allowed range", src, msg)
		}
	})
}
