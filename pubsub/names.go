package pubsub

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// InvalidError says which input was wrong and why. Commands map it to the
// usage exit code; the gateway maps it to a 400-class answer.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + " " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is (or wraps) an *InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// ValidateGeek checks a user name.
func ValidateGeek(name string) error {
	return validateName("geek", name, false)
}

// ValidateTopic checks one topic name. AllTopics (".") is a valid topic.
func ValidateTopic(name string) error {
	return validateName("topic", name, true)
}

// ValidateTopics checks a list of topics. The limit is on distinct topics,
// as NormalizeTopics counts them: a topic named twice is one (the stores
// look each up once).
func ValidateTopics(topics []string) error {
	if n := len(Unique(topics)); n > MaxTopicsPerConnection {
		return invalid("the topic list", "names %d distinct topics; at most %d are allowed", n, MaxTopicsPerConnection)
	}
	for _, t := range topics {
		if err := ValidateTopic(t); err != nil {
			return err
		}
	}
	return nil
}

func validateName(field, name string, topic bool) error {
	if name == "" {
		return invalid(field, "is empty")
	}
	// The length first: the checks below echo the name.
	if len(name) > MaxNameLength {
		return invalid(field, "is %d bytes long; at most %d are allowed", len(name), MaxNameLength)
	}
	if strings.TrimSpace(name) == "" {
		return invalid(field, "%q is only whitespace", name)
	}
	if !utf8.ValidString(name) {
		return invalid(field, "%q is not valid UTF-8", name)
	}
	for _, r := range name {
		switch {
		case unseen(r) != "":
			return invalid(field, "%q contains %s", name, unseen(r))
		case r == ',':
			// Commas separate topics in the connect URL. Most places
			// that check a name take one (listen --geek, ?geek=), so the
			// words say only what is wrong; publish --geek, which takes
			// several, adds its own advice.
			return invalid(field, "%q: a %s name may not contain a comma", name, field)
		case r == '#':
			// '#' separates key parts in the DynamoDB table design.
			return invalid(field, "%q contains '#', which socks reserves", name)
		}
	}
	if !topic && name == AllTopics {
		return invalid(field, "%q is reserved for \"every topic\"", name)
	}
	return nil
}

// unseen names what the rune r is when it does not show as itself
// wherever a name or an ID is printed, or returns "": a control character,
// whitespace (U+00A0 and U+2028 too), or an invisible formatting character
// (a bidi override, a zero-width space), which make one name look like
// another. It is the rule of geek and topic names and of message IDs.
func unseen(r rune) string {
	switch {
	case unicode.IsControl(r):
		return fmt.Sprintf("the control character %U", r)
	case unicode.IsSpace(r):
		return "whitespace"
	case unicode.Is(unicode.Cf, r):
		return fmt.Sprintf("the invisible formatting character %U", r)
	}
	return ""
}

// SplitTopics parses the comma list of a connect URL's topic parameter.
// Empty input means AllTopics; duplicates are removed and order is kept.
func SplitTopics(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return []string{AllTopics}, nil
	}
	return TopicList([]string{s})
}

// TopicList parses topics given as several values, each of which may be a
// comma list: the one rule of `?topic=a,b`, `listen --topic a,b` and
// `publish --topic a,b`. Duplicates are removed and order is kept; no
// values give no topics.
func TopicList(values []string) ([]string, error) {
	var split []string
	for _, v := range values {
		split = append(split, strings.Split(v, ",")...)
	}
	return NormalizeTopics(split)
}

// NormalizeTopics validates topics and removes duplicates, keeping order.
func NormalizeTopics(in []string) ([]string, error) {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, t := range in {
		if err := ValidateTopic(t); err != nil {
			return nil, err
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) > MaxTopicsPerConnection {
		return nil, invalid("the topic list", "names %d distinct topics; at most %d are allowed", len(out), MaxTopicsPerConnection)
	}
	return out, nil
}

// Unique returns names without repeated values, keeping the first of each
// and the order. A list of fewer than two is returned as it is.
func Unique(names []string) []string {
	if len(names) < 2 {
		return names
	}
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// ValidateTopicPatterns checks the topic patterns a chatter ID may be
// limited to: topic names, each optionally ending in '*' to allow every
// topic that starts with what comes before it ("entity:*"). The limit is
// on distinct patterns: one named twice is one (IssueChatterIDWithin keeps
// it once).
func ValidateTopicPatterns(patterns []string) error {
	if n := len(Unique(patterns)); n > MaxTopicsPerConnection {
		return invalid("the topic list", "names %d distinct patterns; at most %d are allowed", n, MaxTopicsPerConnection)
	}
	for _, p := range patterns {
		// A name's own rules first: its length is checked before the
		// words below quote it.
		if err := ValidateTopic(p); err != nil {
			return err
		}
		// '*' is a character of a topic's name anywhere else; here it
		// is the wildcard, and the refusals say so.
		if p == "*" {
			// TopicAllowed would allow every topic but AllTopics: not
			// "any topic", which is no patterns at all.
			return invalid("topics", "pattern \"*\" would allow every topic but '.': in a pattern '*' matches any ending of a name (\"entity:*\"), so a topic named \"*\" cannot be named alone; leave the topics out to allow any topic")
		}
		if p == AllTopics {
			// TopicAllowed lets only no patterns at all allow it: as a
			// pattern it would allow nothing.
			return invalid("topics", "pattern %q means every topic; leave the topics out instead", p)
		}
		if i := strings.Index(p, "*"); i >= 0 && i < len(p)-1 {
			return invalid("topics", "pattern %q has '*' before its end: in a pattern '*' matches any ending of a name and may only end one, so a topic whose name holds '*' before its end cannot be named exactly; %q allows it, with every topic starting %q", p, p[:i+1], p[:i])
		}
	}
	return nil
}

// TopicAllowed reports whether patterns (empty: any topic) allow topic. A
// pattern ending in '*' allows the topics starting with the rest of it; the
// wildcard topic AllTopics is allowed only by no patterns at all.
func TopicAllowed(patterns []string, topic string) bool {
	if len(patterns) == 0 {
		return true
	}
	if topic == AllTopics {
		return false
	}
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(topic, prefix) {
				return true
			}
		} else if p == topic {
			return true
		}
	}
	return false
}
