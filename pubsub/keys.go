package pubsub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Keys are the keys socks reads of a JSON object from outside into a
// struct: the json names of its fields, its embedded structs' included.
//
// encoding/json reads a key into a field whatever its case ("Users", and
// "uſers" with a long s, fill the field of "users"), the last of several
// counting, where JSON.parse, Python's json, a producer's validator or an
// SNS filter policy read "users" and "Users" as two keys. A message read
// one way by them and another by socks would be smuggled past them: socks
// refuses an object with a key that differs from one of its keys only by
// case (CheckKeys). Its other keys are unknown ones, which encoding/json reads
// into no field and socks ignores (forward compatibility); its keys then
// read as written, as other readers read them.
type Keys struct {
	names []string
	index map[string][]int // the field of each name
}

// KeysOf returns the keys of the struct type T.
func KeysOf[T any]() Keys {
	k := Keys{index: map[string][]int{}}
	var walk func(t reflect.Type, at []int)
	walk = func(t reflect.Type, at []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			index := append(slices.Clone(at), i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Anonymous && f.Type.Kind() == reflect.Struct && name == "":
				walk(f.Type, index)
			case !f.IsExported() || name == "-":
			default:
				if name == "" {
					name = f.Name
				}
				k.names = append(k.names, name)
				k.index[name] = index
			}
		}
	}
	walk(reflect.TypeFor[T](), nil)
	return k
}

// CheckKeys says why the object obj (decoded) has a key that differs
// from one of k only by case, as encoding/json compares them
// (strings.EqualFold), or "" when none does. Of several it names the
// first in byte order.
func CheckKeys[V any](obj map[string]V, k Keys) string {
	var bad, want string
	for key := range obj {
		if name := k.twin(key); name != "" && (bad == "" || key < bad) {
			bad, want = key, name
		}
	}
	return caseRefusal(bad, want)
}

// checkRaw is CheckKeys of the keys of the JSON object data (none when it is
// no object), read from its bytes without decoding it.
func (k Keys) checkRaw(data []byte) string {
	var bad, want string
	eachKey(data, func(key []byte) {
		// string(key) is not kept: no copy of the key is made.
		if name := k.twin(string(key)); name != "" && (bad == "" || string(key) < bad) {
			bad, want = string(key), name
		}
	})
	return caseRefusal(bad, want)
}

func caseRefusal(key, want string) string {
	if key == "" {
		return ""
	}
	return fmt.Sprintf("has key %q, not %q: keys are case-sensitive", key, want)
}

// twin is the key of k that key differs from only by case, or "".
func (k Keys) twin(key string) string {
	if _, ok := k.index[key]; ok {
		return ""
	}
	for _, name := range k.names {
		if strings.EqualFold(key, name) {
			return name
		}
	}
	return ""
}

// CheckJSONObject is CheckJSON for a JSON object read into a struct of
// keys: it also says why (CheckKeys) when data is an object with a key that
// differs from one of them only by case, within the decode CheckJSON does.
// A value that is no object is left to the decoding that follows, which
// says what it should be.
func CheckJSONObject(data []byte, keys Keys) string {
	_, why := checkObject(data, keys)
	return why
}

// checkObject is CheckJSONObject that also returns the value decoded.
func checkObject(data []byte, keys Keys) (any, string) {
	v, why := decodeJSON(data)
	if obj, ok := v.(map[string]any); ok && why == "" {
		why = CheckKeys(obj, keys)
	}
	return v, why
}

// eachKey calls f with each key of the JSON object data at its top level,
// as encoding/json reads it (escapes resolved), none when data is no
// object. data is valid JSON. It reads the bytes once without decoding
// them.
func eachKey(data []byte, f func(key []byte)) {
	data = TrimJSONSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return
	}
	depth, isKey := 0, false
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			end := stringEnd(data, i)
			if depth == 1 && isKey {
				key := data[i+1 : end]
				if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
					var s string
					_ = json.Unmarshal(data[i:end+1], &s) // valid JSON
					key = []byte(s)
				}
				f(key)
				isKey = false
			}
			i = end
		case '{', '[':
			depth++
			isKey = depth == 1
		case '}', ']':
			depth--
		case ',':
			isKey = depth == 1
		}
	}
}

// stringEnd is the index of the quote that ends the JSON string that
// starts at data[start] (len(data) when none does).
func stringEnd(data []byte, start int) int {
	end := start + 1
	for {
		j := bytes.IndexByte(data[end:], '"')
		if j < 0 {
			return len(data)
		}
		end += j
		backslashes := 0
		for k := end - 1; k > start && data[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return end
		}
		end++
	}
}

// decode sets the fields of the struct v points to from the keys of the
// JSON object data written exactly as k's: a key in another case is not
// read. Of a key written twice the last counts, as in JSON.parse.
func (k Keys) decode(data []byte, v any) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	s := reflect.ValueOf(v).Elem()
	for _, name := range k.names {
		raw, ok := top[name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, s.FieldByIndex(k.index[name]).Addr().Interface()); err != nil {
			return err
		}
	}
	return nil
}
