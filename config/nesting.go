package config

import (
	"bytes"
	"math"
	"unicode/utf8"

	"github.com/socks-dev/socks/internal/text"
)

// maxNesting bounds how deep a config file may nest before socks hands it
// to the TOML library: table header segments ([a.b.c] is 3, [[a.b]] is 3
// with the array), the segments of a dotted key past the first (a.b.c = 1
// is 2 more than its table), and each array and inline table, counted
// together. The deepest thing a socks config holds is a mapping's topics,
// 4 deep however it is written ([profiles.p.mapping] with topics = [...],
// or profiles = {p = {mapping = {topics = [...]}}}); 32 leaves room for
// keys socks does not know, which it names as mistakes. The bound is there
// because the library pays for each level with the whole key path above
// it: a 400 KB file of inline tables 100,000 deep took every byte of
// memory a 24 GB machine had.
const maxNesting = 32

// maxNames bounds what the library pays for the names of a config file's
// keys: it spells out, and keeps, the full name of every key it meets (the
// tables it is in, then its own, as "a.b.c"; each part of a dotted key,
// each key of an inline table), so that within maxNesting a name 20 KB
// long that is the table of 3,000 keys spells out 60 MB of names, and a
// 100 KB file of them cost 760 MB (1 MiB, about 80 GB). Each key is
// counted as the bytes of its full name and partCost more for each of its
// parts (the library copies the list of parts too); a file of ordinary
// keys as big as socks reads (maxConfigSize) comes to about 10 MB, and
// the costliest file within the budget costs the library about 80 MB.
const (
	maxNames = 32 << 20
	partCost = 64
)

// nestedTooDeep returns the 1-based line where src first nests deeper
// than maxNesting, or its keys' names come to more than maxNames, and
// which of the two (0 and "" when neither).
func nestedTooDeep(src []byte) (line int, why string) {
	at, names, _ := scanNesting(src, maxNesting, maxNames)
	if at < 0 {
		return 0, ""
	}
	why = "deep"
	if names {
		why = "names"
	}
	return bytes.Count(src[:at], []byte("\n")) + 1, why
}

// nesting is scanNesting with no bound on the names.
func nesting(src []byte, limit int) (at int, complete bool) {
	at, _, complete = scanNesting(src, limit, math.MaxInt)
	return at, complete
}

// name is the full name of a key or table, as the library spells it: the
// bytes of its parts and how many there are.
type name struct{ bytes, parts int }

func (n name) cost() int { return n.bytes + n.parts*partCost }

// scanNesting scans src for the first place it nests deeper than limit,
// or its keys' names come to more than budget (names is then true), and
// returns its byte offset, or -1. It reads just enough TOML for that:
// strings of all four kinds (a [ in one is not nesting), comments, keys
// bare and quoted, arrays and inline tables across lines. complete is
// false when it met what is not TOML and stopped there; the library
// stops at the same place with its own error, so nothing past it is
// decoded either.
func scanNesting(src []byte, limit, budget int) (at int, names, complete bool) {
	s := &scanner{src: src}
	spent := 0
	// charge counts a key of n parts size bytes long, in a table or key
	// named in, against the budget: its name, and at most as much for
	// each table its dotted parts make on the way; with no parts, in
	// itself.
	charge := func(in name, n, size int) bool {
		if n == 0 {
			spent += in.cost()
		}
		spent += n*(in.bytes+size) + partCost*(n*in.parts+n*(n+1)/2)
		return spent > budget
	}
	// Byte order marks, skipped as the library does (UTF-16's too).
	switch text.ByteOrderMark(src) {
	case "UTF-8":
		s.i = 3
	case "UTF-16LE", "UTF-16BE":
		s.i = 2
	}
	// The library stops at the first byte it refuses, so nothing past it
	// counts: the file gets the library's error for that byte.
	end := s.i + refusedByte(src[s.i:])
	s.src = src[:end]
	table := 0     // depth of the current table
	var tname name // and its name
	for {
		s.space(true)
		if s.eof() {
			return -1, false, end == len(src)
		}
		start := s.i
		if s.src[s.i] == '[' {
			s.i++
			array := !s.eof() && s.src[s.i] == '['
			if array {
				s.i++
			}
			n, size, ok := s.keyParts()
			if !ok || !s.expect(']') {
				return -1, false, false
			}
			parts := n
			if array {
				if s.eof() || s.src[s.i] != ']' {
					return -1, false, false
				}
				s.i++
				n++
			}
			if table = n; table > limit {
				return start, false, true
			}
			if tname = (name{size, parts}); charge(name{}, parts, size) {
				return start, true, true
			}
		} else {
			n, size, ok := s.keyParts()
			if !ok || !s.expect('=') {
				return -1, false, false
			}
			if table+n-1 > limit {
				return start, false, true
			}
			if charge(tname, n, size) {
				return start, true, true
			}
			key := name{tname.bytes + size, tname.parts + n}
			at, names, ok := s.nestedValue(table+n-1, limit, key, charge)
			if at >= 0 || !ok {
				return at, names, ok
			}
		}
		// The rest of the line is blanks and a comment.
		s.blanks()
		if !s.eof() && s.src[s.i] != '\n' && s.src[s.i] != '\r' && s.src[s.i] != '#' {
			return -1, false, false
		}
	}
}

// space skips blanks and, when newlines is set, newlines and comments.
func (s *scanner) space(newlines bool) {
	for !s.eof() {
		switch s.src[s.i] {
		case ' ', '\t':
		case '\n', '\r':
			if !newlines {
				return
			}
		case '#':
			if !newlines {
				return
			}
			for !s.eof() && s.src[s.i] != '\n' {
				s.i++
			}
			continue
		default:
			return
		}
		s.i++
	}
}

// keyParts reads a key, bare or quoted parts joined by dots, and returns
// how many parts it has and their length together (a quoted one's with
// its quotes). A bare part is taken loosely (anything up to a
// blank, dot or punctuation), so that no key the library allows stops
// the scan.
func (s *scanner) keyParts() (n, size int, ok bool) {
	for {
		s.blanks()
		if s.eof() {
			return 0, 0, false
		}
		start := s.i
		if c := s.src[s.i]; c == '"' || c == '\'' {
			if s.str() != nil {
				return 0, 0, false
			}
		} else {
			for !s.eof() && !bytes.ContainsRune([]byte(" \t.=[]{}#,\"'\n\r"), rune(s.src[s.i])) {
				s.i++
			}
			if s.i == start {
				return 0, 0, false
			}
		}
		n++
		size += s.i - start
		s.blanks()
		if s.eof() || s.src[s.i] != '.' {
			return n, size, true
		}
		s.i++
	}
}

// nestedValue reads the value of a key named key at depth base and
// returns the offset of the first array or inline table in it deeper than
// limit, or of the first key in it that charge finds over the budget
// (names is then true), or -1.
func (s *scanner) nestedValue(base, limit int, key name, charge func(name, int, int) bool) (at int, names, ok bool) {
	type frame struct {
		table bool // an inline table, else an array
		extra int  // in a table: the current key's parts past the first
		name  name // the name of the key whose value it is
	}
	var stack []frame
	depth := base
	const (
		wantValue = iota
		wantKey
		afterValue
	)
	// pop ends the innermost array or table: the key whose value comes
	// next is the enclosing array's, or is read next in a table.
	pop := func() {
		depth -= 1 + stack[len(stack)-1].extra
		stack = stack[:len(stack)-1]
		if len(stack) > 0 && !stack[len(stack)-1].table {
			key = stack[len(stack)-1].name
		}
	}
	state := wantValue
	for {
		switch state {
		case wantValue:
			s.space(len(stack) > 0)
			if s.eof() {
				return -1, false, false
			}
			switch c := s.src[s.i]; {
			case c == ']' && len(stack) > 0 && !stack[len(stack)-1].table:
				// An empty array, or a comma before its end.
				s.i++
				pop()
				state = afterValue
			case c == '[' || c == '{':
				if depth++; depth > limit {
					return s.i, false, true
				}
				// The library names each inline table, also one in an
				// array, after its key.
				if c == '{' && charge(key, 0, 0) {
					return s.i, true, true
				}
				s.i++
				stack = append(stack, frame{table: c == '{', name: key})
				if c == '{' {
					state = wantKey
				}
			case c == '"' || c == '\'':
				if s.str() != nil {
					return -1, false, false
				}
				state = afterValue
			default:
				// A number, boolean or date (which may hold a blank).
				start := s.i
				for !s.eof() && !bytes.ContainsRune([]byte(",[]{}#\"'\n\r"), rune(s.src[s.i])) {
					s.i++
				}
				if s.i == start {
					return -1, false, false
				}
				state = afterValue
			}
		case wantKey:
			s.space(true)
			if s.eof() {
				return -1, false, false
			}
			top := &stack[len(stack)-1]
			if s.src[s.i] == '}' {
				// An empty table, or a comma before its end.
				s.i++
				pop()
				state = afterValue
				continue
			}
			start := s.i
			n, size, ok := s.keyParts()
			if !ok || !s.expect('=') {
				return -1, false, false
			}
			depth += n - 1 - top.extra
			top.extra = n - 1
			if depth > limit {
				return start, false, true
			}
			if charge(top.name, n, size) {
				return start, true, true
			}
			key = name{top.name.bytes + size, top.name.parts + n}
			state = wantValue
		case afterValue:
			if len(stack) == 0 {
				return -1, false, true
			}
			s.space(true)
			if s.eof() {
				return -1, false, false
			}
			top := stack[len(stack)-1]
			switch c := s.src[s.i]; {
			case c == ',':
				s.i++
				state = wantValue
				if top.table {
					state = wantKey
				}
			case c == ']' && !top.table, c == '}' && top.table:
				s.i++
				pop()
			default:
				return -1, false, false
			}
		}
	}
}

// refusedByte returns the offset of the first byte of src that no TOML
// file may hold and the library stops at wherever it is (in a string or
// comment too): a control character other than tab and newline, a CR
// not followed by LF, or a byte that is not UTF-8. It is len(src) when
// there is none.
func refusedByte(src []byte) int {
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\t' || c == '\n':
		case c == '\r':
			if i+1 == len(src) || src[i+1] != '\n' {
				return i
			}
		case c < 0x20 || c == 0x7f:
			return i
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n == 1 {
				return i
			}
			i += n
			continue
		}
		i++
	}
	return len(src)
}
