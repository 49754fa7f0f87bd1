package cmdutil

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
)

// typedReader yields b in reads of at most n bytes (a terminal hands a
// line over as it is typed), then, when broken, fails with errBroken.
type typedReader struct {
	b      []byte
	n      int
	broken bool
}

func (r *typedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		if r.broken {
			return 0, errBroken
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// FuzzATypedLineIsReadAsTypedButNeverPastItsBound reads any typed bytes,
// handed over in any reads, ending or broken by a read error, with any
// bound: readLineCtx returns the first line through its '\n', or all
// there is when the input ends first, or, for a line longer than the
// bound, its first bound+1 bytes and never the whole of it; a read error
// before the line's end is returned, with no line. ReadSecretFile on a
// terminal (`--id-file -`) takes that line only within its bound, and
// refuses any other in words that are the same whatever was typed, so
// that they never show a secret.
func FuzzATypedLineIsReadAsTypedButNeverPastItsBound(f *testing.F) {
	for _, s := range []string{
		"", "\n", " yes \n", "y", "sc_abc\r\n", "sc_abc\nsc_def\n", "\xef\xbb\xbfsc_abc\n", "sc_abc",
		strings.Repeat("y", 40) + "\n", strings.Repeat("x", 63) + "\n", strings.Repeat("x", 64) + "\n",
	} {
		f.Add([]byte(s), uint8(63), uint8(7), false)
		f.Add([]byte(s), uint8(2), uint8(0), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, bound, chunk uint8, broken bool) {
		max := int(bound%64) + 1
		read := func() *typedReader { return &typedReader{b: in, n: int(chunk%8) + 1, broken: broken} }

		// What the line is: through the first '\n' within max+1 bytes,
		// or max+1 bytes of a longer one, or all of in when it ends first.
		head := in[:min(len(in), max+1)]
		want, wantErr := "", false
		switch i := bytes.IndexByte(head, '\n'); {
		case i >= 0:
			want = string(head[:i+1])
		case len(in) > max:
			want = string(head)
		case broken:
			wantErr = true
		default:
			want = string(in)
		}

		line, err := readLineCtx(t.Context(), read(), max)
		if wantErr {
			if line != "" || !errors.Is(err, errBroken) {
				t.Fatalf("%q (bound %d, broken): read %q, %v; want no line and the read's error", in, max, line, err)
			}
		} else if err != nil || line != want {
			t.Fatalf("%q (bound %d): read %q, %v; want %q", in, max, line, err, want)
		}
		first := in
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			first = in[:i+1]
		}
		if len(line) > max+1 || (len(first) > max+1 && line == string(first)) {
			t.Fatalf("%q (bound %d): a line over the bound read whole: %q", in, max, line)
		}

		ios, _, _, _ := iostreams.Test()
		ios.SetTTY(true, false, false)
		ios.In = read()
		got, err := ReadSecretFile(t.Context(), ios, "id-file", "-", "", max)
		if !wantErr && len(want) <= max {
			if err != nil || got != want {
				t.Fatalf("%q (bound %d): ReadSecretFile = %q, %v; want the line %q", in, max, got, err, want)
			}
			return
		}
		var fe *FlagError
		if !errors.As(err, &fe) || got != "" {
			t.Fatalf("%q (bound %d): ReadSecretFile = %q, %v; want a usage error", in, max, got, err)
		}
		// The same refusal for a line of as many bytes that says nothing.
		blank := bytes.Repeat([]byte{'-'}, len(in))
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			blank[i] = '\n'
		}
		ios.In = &typedReader{b: blank, n: int(chunk%8) + 1, broken: broken}
		if _, other := ReadSecretFile(t.Context(), ios, "id-file", "-", "", max); other == nil || other.Error() != err.Error() {
			t.Fatalf("%q (bound %d): refused with %q, but a line of '-' with %v: the words depend on what was typed", in, max, err, other)
		}
	})
}
