package pubsub

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzNamesKeepTheDocumentedRules checks geek and topic names against the
// rules docs/chatter.md and docs/protocol.md state (1–128 bytes of UTF-8
// without whitespace, control characters, invisible formatting characters,
// ',' or '#'; "." only as the every-topic wildcard): ValidateGeek and
// ValidateTopic accept exactly those, and refuse the rest with an
// *InvalidError in words, bounded however long the name.
func FuzzNamesKeepTheDocumentedRules(f *testing.F) {
	for _, s := range []string{"Friendless", "entity:42", ".", "", " ", "a b", "a,b", "a#b", "\u200bx", "\u202eevil", "\xff", strings.Repeat("é", 64), strings.Repeat("x", 129), "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := len(name) >= 1 && len(name) <= 128 && utf8.ValidString(name) &&
			!strings.ContainsFunc(name, func(r rune) bool {
				return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == ',' || r == '#'
			})
		for _, check := range []struct {
			what     string
			validate func(string) error
			want     bool
		}{
			{"geek", ValidateGeek, want && name != AllTopics},
			{"topic", ValidateTopic, want},
		} {
			err := check.validate(name)
			if (err == nil) != check.want {
				t.Fatalf("%s %q: err %v; the documented rules say valid=%v", check.what, name, err, check.want)
			}
			if err == nil {
				continue
			}
			if !IsInvalid(err) || !strings.HasPrefix(err.Error(), check.what+" ") {
				t.Fatalf("%s %q: %v is not an *InvalidError about the %s", check.what, name, err, check.what)
			}
			if n := len(err.Error()); n > 1024 {
				t.Fatalf("%s of %d bytes: a refusal of %d bytes", check.what, len(name), n)
			}
		}
	})
}

// FuzzTopicPatternsAllowOnlyWhatTheySay checks the topic patterns a
// chatter ID may be limited to: a list ValidateTopicPatterns accepts
// allows each of its plain names, never the every-topic wildcard, and a
// topic only when one pattern is that topic or ends in '*' with the topic
// starting with the rest of it; '*' is only ever at a pattern's end, and a
// pattern "*", which would allow every topic but the wildcard, is refused.
func FuzzTopicPatternsAllowOnlyWhatTheySay(f *testing.F) {
	f.Add("updates,entity:*", "entity:42")
	f.Add("updates", "updates2")
	f.Add("*", "x")
	f.Add("a*b", "ab")
	f.Add("a**", "a")
	f.Add("news,news", ".")
	f.Add("", "x")
	f.Fuzz(func(t *testing.T, list, topic string) {
		var patterns []string
		if list != "" {
			patterns = strings.Split(list, ",")
		}
		if err := ValidateTopicPatterns(patterns); err != nil {
			if !IsInvalid(err) {
				t.Fatalf("%q: %v is not an *InvalidError", patterns, err)
			}
			return
		}
		if len(patterns) == 0 {
			if !TopicAllowed(patterns, topic) {
				t.Fatalf("no patterns refused %q", topic)
			}
			return
		}
		if TopicAllowed(patterns, AllTopics) {
			t.Fatalf("%q allows every topic", patterns)
		}
		explained := false
		for _, p := range patterns {
			prefix, wild := strings.CutSuffix(p, "*")
			if strings.Contains(prefix, "*") || p == "*" || ValidateTopic(p) != nil {
				t.Fatalf("%q was accepted with the pattern %q", patterns, p)
			}
			if !wild && !TopicAllowed(patterns, p) {
				t.Fatalf("%q does not allow its own %q", patterns, p)
			}
			if topic != AllTopics && (p == topic || (wild && strings.HasPrefix(topic, prefix))) {
				explained = true
			}
		}
		if TopicAllowed(patterns, topic) != explained {
			t.Fatalf("%q allows %q: %v; the patterns say %v", patterns, topic, !explained, explained)
		}
	})
}
