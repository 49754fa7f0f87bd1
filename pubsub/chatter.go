package pubsub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// chatterBytes is the entropy of a chatter ID: 192 random bits.
const chatterBytes = 24

// chatterChars is the length of an ID's secret part: chatterBytes in
// unpadded base64.
const chatterChars = (chatterBytes*8 + 5) / 6

// chatterPrefix marks socks chatter IDs so that a leaked one is recognisable
// by secret scanners.
const chatterPrefix = "sc_"

// NewChatterID returns a fresh URL-safe secret with 192 random bits.
func NewChatterID() string {
	var b [chatterBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return chatterPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashChatterID returns the hex SHA-256 of a chatter ID. Only this hash is
// stored. A plain hash is enough: the secret has 192 random bits, so there is
// nothing to brute-force that a slow KDF would protect.
func HashChatterID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Fingerprint is the short, non-secret handle shown by `chatter list` and
// accepted by `chatter revoke --id`: the first 12 hex digits of the hash.
func Fingerprint(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// HideChatterIDs returns s with each run that has the shape of a chatter
// ID (its prefix and at least 20 of the characters that follow it, as a
// paste cut short or run on may leave it, capitals and small letters
// among them) written sc_(hidden): for a log line that quotes what a
// client sent, where one pasted in the wrong place must not be written
// down. The 192 random bits of an ID, written in base64, hold both
// (all but about one in nine million IDs); a name that holds "sc_" is
// written in one case (misc_operations_dashboard) and is kept. An ID's
// secret part pasted without its prefix (?geek= given what follows sc_)
// is hidden the same way when it stands alone, whole: a run of exactly
// chatterChars such characters, both cases among them (a name of 32
// letters in two cases is hidden too; a hash, a UUID, a name in one case
// is kept).
func HideChatterIDs(s string) string {
	if len(s) < chatterChars && !strings.Contains(s, chatterPrefix) {
		return s
	}
	var b strings.Builder
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); {
		if !base64URLByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && base64URLByte(s[j]) {
			j++
		}
		run := s[i:j]
		from := -1 // where in s the hidden part starts
		if k := strings.Index(run, chatterPrefix); k >= 0 {
			if tail := run[k+len(chatterPrefix):]; len(tail) >= 20 && mixedCase(tail) {
				from = i + k
			}
		}
		// A secret part alone may hold "sc_" itself (about one in nine
		// thousand), too near its end for the rule above.
		if from < 0 && len(run) == chatterChars && mixedCase(run) {
			from = i
		}
		if from >= 0 {
			b.WriteString(s[done:from])
			b.WriteString(chatterPrefix + "(hidden)")
			done = j
		}
		i = j
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// mixedCase reports whether s holds an ASCII capital and a small letter.
func mixedCase(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' }) &&
		strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

// base64URLByte reports whether c is of the URL-safe base64 alphabet a
// chatter ID is written in.
func base64URLByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// InChatterIDAlphabet reports whether s holds only what an issued chatter
// ID is written in: its prefix and URL-safe base64, ASCII letters, digits,
// '-' and '_'. Anything else (a control or formatting character, a space,
// a letter beyond ASCII) came with a paste, and no ID holds it.
func InChatterIDAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base64URLByte(s[i]) {
			return false
		}
	}
	return true
}

// ChatterIDStray names the first character of s that no issued chatter
// ID holds (see InChatterIDAlphabet), and where it is, in words of
// printable ASCII that show nothing else of s (it may be a mistyped
// secret): "U+00A0 (a no-break space) at its end", "the byte 0xFF, which
// is not UTF-8, inside it". It returns "" when s holds none.
func ChatterIDStray(s string) string {
	for i := 0; i < len(s); i++ {
		if base64URLByte(s[i]) {
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		what := ""
		if r == utf8.RuneError && n <= 1 {
			what, n = fmt.Sprintf("the byte 0x%02X, which is not UTF-8,", s[i]), 1
		} else {
			what = fmt.Sprintf("%U (%s)", r, strayKind(r))
		}
		switch {
		case i == 0:
			return what + " at its start"
		case i+n == len(s):
			return what + " at its end"
		}
		return what + " inside it"
	}
	return ""
}

// strayNames are the characters a paste brings along most, by name.
var strayNames = map[rune]string{
	' ':      "a space",
	'\t':     "a tab",
	'\u00a0': "a no-break space",
	'\u202f': "a narrow no-break space",
}

// strayKind says what r, no character of a chatter ID, is: its name, or
// its kind, or (printable ASCII, which shows as itself anywhere) r quoted.
func strayKind(r rune) string {
	if name := strayNames[r]; name != "" {
		return name
	}
	switch {
	case unicode.IsControl(r):
		return "a control character"
	case unicode.IsSpace(r):
		return "white space"
	case unicode.Is(unicode.Cf, r):
		return "an invisible formatting character"
	case r > unicode.MaxASCII:
		return "a character beyond ASCII"
	}
	return fmt.Sprintf("%q", r)
}

// LooksLikeChatterID reports whether s has the shape of an issued secret
// (as opposed to a fingerprint).
func LooksLikeChatterID(s string) bool {
	return strings.HasPrefix(s, chatterPrefix)
}
