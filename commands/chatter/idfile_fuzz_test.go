package chatter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// revoking is a Store whose RevokeChatterIDs records the prefixes asked
// for.
type revoking struct {
	store.Store
	prefixes *[]string
}

func (r revoking) RevokeChatterIDs(_ context.Context, _ string, prefixes []string) (int, error) {
	*r.prefixes = append(*r.prefixes, prefixes...)
	return len(prefixes), nil
}

// readIDs is readIDFile of `--id-file -` piped in with file.
func readIDs(file []byte) ([]string, error) {
	ios, in, _, _ := iostreams.Test()
	in.Write(file)
	return readIDFile(context.Background(), &RevokeOptions{IO: ios, Geek: "alice", IDFile: "-"})
}

// masked is b with every character that is not a space (unicode.IsSpace)
// written as as many 'x' as it has bytes, and its byte order mark kept:
// the same file to a reader that only looks at its lines and size.
func masked(b []byte) []byte {
	out := bytes.Clone(b)
	start := 0
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if bytes.HasPrefix(b, []byte(bom)) {
			start = len(bom)
			break
		}
	}
	for i := start; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || !unicode.IsSpace(r) {
			copy(out[i:i+n], bytes.Repeat([]byte{'x'}, n))
		}
		i += n
	}
	return out
}

// FuzzAnIDFileIsReadLineByLineOrRefusedInWords reads any `chatter revoke
// --id-file` file: one read has an entry for each of its lines, trimmed,
// so that a line number named in an error is the file's; one refused is a
// usage error whose words are the same for any file of the same lines and
// size (they never show a secret). A file written of IDs, one a line,
// with blank lines, CRLF line ends, spaces around them, a UTF-8 byte order
// mark or no final newline in any mix, reads back as the IDs written, each
// at its line; revoke then asks the store for each, in order (a secret by
// its hash, a fingerprint in lower case), or refuses the first that is
// neither, naming its line and not showing it.
func FuzzAnIDFileIsReadLineByLineOrRefusedInWords(f *testing.F) {
	for _, s := range []string{
		"sc_abc\n\n  sc_def  \n", "sc_abc\noops-not-an-id\n", " \n", "", "\xef\xbb\xbfsc_abc\r\n", "\xff\xfes\x00c\x00",
		"0123456789ab\nsc_Zq8secretPart x\n", "0123456789ab\nsc_Zq8secretPart\x1b[2J\n", "sc_Zq8secretPart\u200b", "sc_é\xff",
		"DEADBEEF00\r\n\r\nsc_a-b_c", "\u00a0sc_a\u0085\n\u2028",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(0xff))
	}
	f.Fuzz(func(t *testing.T, raw string, layout uint8) {
		// Any file.
		ids, err := readIDs([]byte(raw))
		if err != nil {
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) {
				t.Fatalf("%q: refused with %v, not a usage error", raw, err)
			}
			if _, other := readIDs(masked([]byte(raw))); other == nil || other.Error() != err.Error() {
				t.Fatalf("%q: refused with %q, but the same lines masked with %v: the words show what the file holds", raw, err, other)
			}
		} else {
			text := strings.TrimPrefix(raw, "\xef\xbb\xbf")
			if len(ids) != strings.Count(text, "\n")+1 {
				t.Fatalf("%q: read as %d entries for %d lines", raw, len(ids), strings.Count(text, "\n")+1)
			}
			for i, id := range ids {
				if id != cmdutil.TrimChatterID(id) || strings.Contains(id, "\n") || !strings.Contains(text, id) {
					t.Fatalf("%q: entry %d is %q, not a line of the file trimmed", raw, i+1, id)
				}
			}
		}

		// A file written of the IDs in raw, laid out as layout says.
		tokens := strings.FieldsFunc(raw, func(r rune) bool { return r > unicode.MaxASCII || !pubsub.InChatterIDAlphabet(string(r)) })
		nl := "\n"
		if layout&2 != 0 {
			nl = "\r\n"
		}
		build := func(tokens []string) (string, []int) {
			var file strings.Builder
			if layout&1 != 0 {
				file.WriteString("\xef\xbb\xbf")
			}
			line, lineOf := 1, make([]int, len(tokens))
			for k, tok := range tokens {
				if layout&4 != 0 && k%2 == 0 {
					file.WriteString(" \t" + nl)
					line++
				}
				if layout&8 != 0 {
					file.WriteString("\t ")
				}
				file.WriteString(tok)
				if layout&16 != 0 {
					file.WriteString("  ")
				}
				lineOf[k] = line
				if k < len(tokens)-1 || layout&32 == 0 {
					file.WriteString(nl)
					line++
				}
			}
			return file.String(), lineOf
		}
		file, lineOf := build(tokens)
		ids, err = readIDs([]byte(file))
		if len(tokens) == 0 {
			if err == nil || !strings.Contains(err.Error(), "holds no chatter ID") {
				t.Fatalf("%q: a file of no ID, %q, read as %q, %v", raw, file, ids, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: the IDs of %q refused: %v", raw, file, err)
		}
		for k, tok := range tokens {
			if lineOf[k] > len(ids) || ids[lineOf[k]-1] != tok {
				t.Fatalf("%q: %q read as %q, without %q at line %d", raw, file, ids, tok, lineOf[k])
			}
		}
		var nonBlank []string
		for _, id := range ids {
			if id != "" {
				nonBlank = append(nonBlank, id)
			}
		}
		if !slices.Equal(nonBlank, tokens) {
			t.Fatalf("%q: %q read as %q; want the IDs %q", raw, file, ids, tokens)
		}

		// Revoke asks for each, or refuses the first that is neither.
		var want []string
		bad := -1
		for k, tok := range tokens {
			switch {
			case pubsub.LooksLikeChatterID(tok):
				want = append(want, pubsub.HashChatterID(tok))
			case len(tok) >= 8 && strings.Trim(strings.ToLower(tok), "0123456789abcdef") == "":
				want = append(want, strings.ToLower(tok))
			default:
				if bad < 0 {
					bad = k
				}
			}
		}
		revoke := func(file string) ([]string, error) {
			ios, in, _, _ := iostreams.Test()
			in.WriteString(file)
			var asked []string
			err := revokeRun(context.Background(), &RevokeOptions{IO: ios, Geek: "alice", IDFile: "-",
				Store: func(context.Context) (store.Store, error) { return revoking{prefixes: &asked}, nil }})
			return asked, err
		}
		asked, err := revoke(file)
		if bad < 0 {
			if err != nil || !slices.Equal(asked, want) {
				t.Fatalf("%q: revoking %q asked for %q, %v; want %q", raw, file, asked, err, want)
			}
			return
		}
		if asked != nil || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d of --id-file -", lineOf[bad])) {
			t.Fatalf("%q: revoking %q asked for %q, %v; want a refusal naming line %d", raw, file, asked, err, lineOf[bad])
		}
		other, _ := build(slices.Concat(tokens[:bad], []string{"zz"}, tokens[bad+1:]))
		if _, err2 := revoke(other); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("%q: the line %q refused with %q, but as zz with %v: the words show the line", raw, tokens[bad], err, err2)
		}
	})
}
