package config

import (
	"errors"

	"github.com/BurntSushi/toml"
)

// statement is one table header or key/value pair of a TOML file, with
// where it lies in the text. SaveProfile edits the file through these.
type statement struct {
	header bool     // a [table] or [[array]] header
	key    []string // the header's table, or the pair's (dotted) key
	table  []string // for a pair: the table it is in
	// lineStart is the first byte of its first line, end the byte after
	// the newline ending its last line (len(src) at the end of the file).
	lineStart, end int
	// valStart and valEnd bound a pair's value (no trailing blanks).
	valStart, valEnd int
}

var errScan = errors.New("not TOML as socks reads it")

// scanTOML splits src into statements. It knows only as much TOML as it
// takes to find where each statement and value starts and ends (strings of
// all four kinds, arrays and inline tables across lines, comments); the
// values themselves are left to the TOML library. src has been decoded by
// the library already, so an error here means the scanner lost its way.
func scanTOML(src []byte) ([]statement, error) {
	s := &scanner{src: src}
	if len(src) >= 3 && src[0] == 0xef && src[1] == 0xbb && src[2] == 0xbf {
		s.i = 3 // UTF-8 byte order mark
	}
	var out []statement
	var table []string
	for {
		lineStart := s.i
		s.blanks()
		if s.eof() {
			return out, nil
		}
		switch c := s.src[s.i]; {
		case c == '\n' || c == '\r' || c == '#':
			if err := s.endLine(); err != nil {
				return nil, err
			}
		case c == '[':
			array := s.peek(1) == '['
			s.i++
			if array {
				s.i++
			}
			key, err := s.key()
			if err != nil {
				return nil, err
			}
			if !s.expect(']') || array && !s.expect(']') {
				return nil, errScan
			}
			if err := s.endLine(); err != nil {
				return nil, err
			}
			table = key
			out = append(out, statement{header: true, key: key, lineStart: lineStart, end: s.i})
		default:
			key, err := s.key()
			if err != nil {
				return nil, err
			}
			if !s.expect('=') {
				return nil, errScan
			}
			s.blanks()
			st := statement{key: key, table: table, lineStart: lineStart, valStart: s.i}
			if err := s.value(); err != nil {
				return nil, err
			}
			st.valEnd = s.i
			for st.valEnd > st.valStart && (src[st.valEnd-1] == ' ' || src[st.valEnd-1] == '\t') {
				st.valEnd--
			}
			if st.valEnd == st.valStart {
				return nil, errScan
			}
			if err := s.endLine(); err != nil {
				return nil, err
			}
			st.end = s.i
			out = append(out, st)
		}
	}
}

type scanner struct {
	src []byte
	i   int
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek(n int) byte {
	if s.i+n < len(s.src) {
		return s.src[s.i+n]
	}
	return 0
}

func (s *scanner) blanks() {
	for !s.eof() && (s.src[s.i] == ' ' || s.src[s.i] == '\t') {
		s.i++
	}
}

// expect skips blanks and c.
func (s *scanner) expect(c byte) bool {
	s.blanks()
	if s.eof() || s.src[s.i] != c {
		return false
	}
	s.i++
	return true
}

// endLine skips blanks and a comment, then the newline (or the end).
func (s *scanner) endLine() error {
	s.blanks()
	if !s.eof() && s.src[s.i] == '#' {
		for !s.eof() && s.src[s.i] != '\n' {
			s.i++
		}
	}
	switch {
	case s.eof():
	case s.src[s.i] == '\n':
		s.i++
	case s.src[s.i] == '\r' && s.peek(1) == '\n':
		s.i += 2
	default:
		return errScan
	}
	return nil
}

// key reads a dotted key: bare, "basic" and 'literal' parts.
func (s *scanner) key() ([]string, error) {
	var parts []string
	for {
		s.blanks()
		start := s.i
		switch {
		case s.eof():
			return nil, errScan
		case s.src[s.i] == '"' || s.src[s.i] == '\'':
			if err := s.str(); err != nil {
				return nil, err
			}
			part, err := unquote(string(s.src[start:s.i]))
			if err != nil {
				return nil, err
			}
			parts = append(parts, part)
		default:
			for !s.eof() && isBare(s.src[s.i]) {
				s.i++
			}
			if s.i == start {
				return nil, errScan
			}
			parts = append(parts, string(s.src[start:s.i]))
		}
		s.blanks()
		if s.eof() || s.src[s.i] != '.' {
			return parts, nil
		}
		s.i++
	}
}

func isBare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// unquote decodes a quoted key part with the TOML library itself.
func unquote(quoted string) (string, error) {
	var v struct {
		K string `toml:"k"`
	}
	if _, err := toml.Decode("k = "+quoted, &v); err != nil {
		return "", errScan
	}
	return v.K, nil
}

// value skips a value: up to the end of its line, or of the last line of a
// multi-line string, array or inline table.
func (s *scanner) value() error {
	depth := 0
	for !s.eof() {
		switch c := s.src[s.i]; c {
		case '"', '\'':
			if err := s.str(); err != nil {
				return err
			}
		case '[', '{':
			depth++
			s.i++
		case ']', '}':
			if depth--; depth < 0 {
				return errScan
			}
			s.i++
		case '#', '\n', '\r':
			if depth == 0 {
				return nil
			}
			if c == '#' {
				for !s.eof() && s.src[s.i] != '\n' {
					s.i++
				}
			} else {
				s.i++
			}
		default:
			s.i++
		}
	}
	if depth != 0 {
		return errScan
	}
	return nil
}

// str skips a string of any of TOML's four kinds.
func (s *scanner) str() error {
	q := s.src[s.i]
	escapes := q == '"'
	if s.peek(1) == q && s.peek(2) == q { // multi-line
		s.i += 3
		escaped := false // the byte before is the end of an escape
		for !s.eof() {
			switch {
			case escapes && s.src[s.i] == '\\':
				s.i += 2
				escaped = true
				continue
			case s.src[s.i] == q && s.peek(1) == q && s.peek(2) == q:
				s.i += 3
				// Up to two more quotes belong to the content; three
				// right after an escape, as BurntSushi/toml reads them
				// ("""\\"""""" is a backslash and three quotes there).
				more := 2
				if escaped {
					more = 3
				}
				for n := 0; n < more && !s.eof() && s.src[s.i] == q; n++ {
					s.i++
				}
				return nil
			default:
				s.i++
			}
			escaped = false
		}
		return errScan
	}
	s.i++
	for !s.eof() && s.src[s.i] != '\n' {
		switch {
		case escapes && s.src[s.i] == '\\':
			s.i += 2
		case s.src[s.i] == q:
			s.i++
			return nil
		default:
			s.i++
		}
	}
	return errScan
}
