package pubsub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxJSONDepth bounds how deeply the JSON socks reads from others (client
// frames, envelopes) may nest, so that a nesting bomb is refused with a
// clear reason before it costs anything.
const MaxJSONDepth = 64

// jsonSpace is the whitespace JSON allows around a value.
const jsonSpace = " \t\r\n"

// TrimJSONSpace returns data without the whitespace JSON allows around a
// value (space, tab, CR, LF) at its ends. Other white space, which
// bytes.TrimSpace would take too (a vertical tab, a form feed, U+0085,
// U+00A0), stays, and CheckJSON refuses it.
func TrimJSONSpace(data []byte) []byte { return bytes.Trim(data, jsonSpace) }

// CheckJSON says, in the user's words, why data is not one acceptable JSON
// value: empty, invalid UTF-8, malformed (with the byte offset) or nested
// deeper than MaxJSONDepth. It returns "" when data is fine.
func CheckJSON(data []byte) string {
	_, why := decodeJSON(data)
	return why
}

// decodeJSON is CheckJSON that also returns the value decoded (nil when
// it says why not).
func decodeJSON(data []byte) (any, string) {
	// JSON's own whitespace only: strings.TrimSpace would also take a
	// vertical tab, a form feed or U+00A0 off the ends, which no JSON
	// parser skips (encoding/json, Marshal's RawMessage, JSON.parse).
	trimmed := strings.Trim(string(data), jsonSpace)
	switch {
	case trimmed == "":
		return nil, "is empty"
	case !utf8.Valid(data):
		return nil, "is not valid UTF-8"
	}
	if d := jsonDepth(data); d > MaxJSONDepth {
		return nil, fmt.Sprintf("nests more than %d levels deep", MaxJSONDepth)
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(trimmed))
	if err := dec.Decode(&v); err != nil {
		return nil, DescribeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "has trailing data after the first JSON value"
	}
	return v, ""
}

// jsonDepth returns the deepest nesting of arrays and objects in data,
// ignoring brackets inside strings. It stops counting past MaxJSONDepth.
func jsonDepth(data []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, b := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '[' || b == '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > MaxJSONDepth {
					return deepest
				}
			}
		case b == ']' || b == '}':
			depth--
		}
	}
	return deepest
}

// DescribeJSONError turns an encoding/json error into words for a user:
// where the JSON broke, or which field had the wrong type and what it
// should be, without Go type names.
func DescribeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var b64 base64.CorruptInputError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("is not valid JSON (it breaks at byte %d)", syn.Offset)
	case errors.As(err, &b64):
		// Valid JSON, whose string for a []byte (an SQS record's
		// binaryValue) is not base64.
		return fmt.Sprintf("has a binary value that is not base64 (it breaks at its byte %d)", int64(b64))
	case errors.As(err, &typ) && strings.HasPrefix(typ.Value, "number ") && strings.HasPrefix(typ.Type.String(), "float"):
		// Decoded into any, only a number out of float64's range fails:
		// JSON.parse would make it Infinity.
		return fmt.Sprintf("has a number too large (%s) for a JSON parser to hold", strings.TrimPrefix(typ.Value, "number "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fmt.Sprintf("must be a JSON %s, not %s", jsonKind(typ.Type.Kind().String()), article(typ.Value))
		}
		return fmt.Sprintf("has %q as %s; it must be %s", field, article(typ.Value), wantKind(typ.Type.String()))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "is not valid JSON (it ends too early)"
	default:
		return "is not valid JSON"
	}
}

func article(value string) string {
	switch value {
	case "array", "object":
		return "an " + value
	case "":
		return "a value of the wrong type"
	}
	return "a " + value
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	}
	return goKind
}

// wantKind names, for a user, the JSON that fills a Go type.
func wantKind(goType string) string {
	switch {
	case goType == "[]string":
		return `a list of strings, like ["news"]`
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	}
	return "of another type"
}
