package config

import "bytes"

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

// nestedTooDeep returns the 1-based line where src first nests deeper
// than maxNesting (0 when it never does).
func nestedTooDeep(src []byte) int {
	at, _ := nesting(src, maxNesting)
	if at < 0 {
		return 0
	}
	return bytes.Count(src[:at], []byte("\n")) + 1
}

// nesting scans src for the first place it nests deeper than limit and
// returns its byte offset, or -1. It reads just enough TOML for that:
// strings of all four kinds (a [ in one is not nesting), comments, keys
// bare and quoted, arrays and inline tables across lines. complete is
// false when it met what is not TOML and stopped there; the library
// stops at the same place with its own error, so nothing past it is
// decoded either.
func nesting(src []byte, limit int) (at int, complete bool) {
	s := &scanner{src: src}
	// Byte order marks, skipped as the library does (UTF-16's too).
	if bytes.HasPrefix(src, []byte("\xff\xfe")) || bytes.HasPrefix(src, []byte("\xfe\xff")) {
		s.i = 2
	} else if bytes.HasPrefix(src, []byte("\ufeff")) {
		s.i = 3
	}
	table := 0 // depth of the current table
	for {
		s.space(true)
		if s.eof() {
			return -1, true
		}
		start := s.i
		if s.src[s.i] == '[' {
			s.i++
			array := !s.eof() && s.src[s.i] == '['
			if array {
				s.i++
			}
			n, ok := s.keyParts()
			if !ok || !s.expect(']') {
				return -1, false
			}
			if array {
				if s.eof() || s.src[s.i] != ']' {
					return -1, false
				}
				s.i++
				n++
			}
			if table = n; table > limit {
				return start, true
			}
		} else {
			n, ok := s.keyParts()
			if !ok || !s.expect('=') {
				return -1, false
			}
			if table+n-1 > limit {
				return start, true
			}
			at, ok := s.nestedValue(table+n-1, limit)
			if at >= 0 || !ok {
				return at, ok
			}
		}
		// The rest of the line is blanks and a comment.
		s.blanks()
		if !s.eof() && s.src[s.i] != '\n' && s.src[s.i] != '\r' && s.src[s.i] != '#' {
			return -1, false
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
// how many parts it has. A bare part is taken loosely (anything up to a
// blank, dot or punctuation), so that no key the library allows stops
// the scan.
func (s *scanner) keyParts() (int, bool) {
	n := 0
	for {
		s.blanks()
		if s.eof() {
			return 0, false
		}
		if c := s.src[s.i]; c == '"' || c == '\'' {
			if s.str() != nil {
				return 0, false
			}
		} else {
			start := s.i
			for !s.eof() && !bytes.ContainsRune([]byte(" \t.=[]{}#,\"'\n\r"), rune(s.src[s.i])) {
				s.i++
			}
			if s.i == start {
				return 0, false
			}
		}
		n++
		s.blanks()
		if s.eof() || s.src[s.i] != '.' {
			return n, true
		}
		s.i++
	}
}

// nestedValue reads the value of a key at depth base and returns the
// offset of the first array or inline table in it deeper than limit, or
// -1.
func (s *scanner) nestedValue(base, limit int) (at int, ok bool) {
	type frame struct {
		table bool // an inline table, else an array
		extra int  // in a table: the current key's parts past the first
	}
	var stack []frame
	depth := base
	const (
		wantValue = iota
		wantKey
		afterValue
	)
	state := wantValue
	for {
		switch state {
		case wantValue:
			s.space(len(stack) > 0)
			if s.eof() {
				return -1, false
			}
			switch c := s.src[s.i]; {
			case c == ']' && len(stack) > 0 && !stack[len(stack)-1].table:
				// An empty array, or a comma before its end.
				s.i++
				depth -= 1 + stack[len(stack)-1].extra
				stack = stack[:len(stack)-1]
				state = afterValue
			case c == '[' || c == '{':
				if depth++; depth > limit {
					return s.i, true
				}
				s.i++
				stack = append(stack, frame{table: c == '{'})
				if c == '{' {
					state = wantKey
				}
			case c == '"' || c == '\'':
				if s.str() != nil {
					return -1, false
				}
				state = afterValue
			default:
				// A number, boolean or date (which may hold a blank).
				start := s.i
				for !s.eof() && !bytes.ContainsRune([]byte(",[]{}#\"'\n\r"), rune(s.src[s.i])) {
					s.i++
				}
				if s.i == start {
					return -1, false
				}
				state = afterValue
			}
		case wantKey:
			s.space(true)
			if s.eof() {
				return -1, false
			}
			top := &stack[len(stack)-1]
			if s.src[s.i] == '}' {
				// An empty table, or a comma before its end.
				s.i++
				depth -= 1 + top.extra
				stack = stack[:len(stack)-1]
				state = afterValue
				continue
			}
			start := s.i
			n, ok := s.keyParts()
			if !ok || !s.expect('=') {
				return -1, false
			}
			depth += n - 1 - top.extra
			top.extra = n - 1
			if depth > limit {
				return start, true
			}
			state = wantValue
		case afterValue:
			if len(stack) == 0 {
				return -1, true
			}
			s.space(true)
			if s.eof() {
				return -1, false
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
				depth -= 1 + top.extra
				stack = stack[:len(stack)-1]
			default:
				return -1, false
			}
		}
	}
}
