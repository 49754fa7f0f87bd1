package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/socks-dev/socks/pubsub"
)

// The config file: named profiles of settings, so that
// `socks --config-profile prod publish ...` needs no other flag.
//
//	# ~/.config/socks/config.toml
//	default_profile = "local"   # used when no profile is named
//
//	[profiles.prod]
//	backend = "aws"
//	region = "eu-west-1"
//	stack = "prod"
//	aws_profile = "company-prod"
//	callback_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
//
//	[profiles.local]
//	state_dir = "/var/lib/socks"
//
//	[profiles.local.mapping]           # EventBridge events -> envelopes
//	topics = ["/detail/entityId"]
//	users = "/detail/userId"
//
// A flag beats an environment variable, which beats the profile, which beats
// the default.
const (
	// EnvConfig names the config file (default $XDG_CONFIG_HOME/socks/config.toml).
	EnvConfig = "SOCKS_CONFIG"
	// EnvConfigProfile names the profile to use.
	EnvConfigProfile = "SOCKS_CONFIG_PROFILE"
)

// File is the parsed config file.
type File struct {
	DefaultProfile string             `toml:"default_profile,omitempty"`
	Profiles       map[string]Profile `toml:"profiles"`
}

// Profile is one named set of settings; empty fields are unset.
type Profile struct {
	Backend          string `toml:"backend,omitempty"`
	StateDir         string `toml:"state_dir,omitempty"`
	Stack            string `toml:"stack,omitempty"`
	Region           string `toml:"region,omitempty"`
	AWSProfile       string `toml:"aws_profile,omitempty"`
	EndpointURL      string `toml:"endpoint_url,omitempty"`
	DynamoDBEndpoint string `toml:"dynamodb_endpoint_url,omitempty"`
	SQSEndpoint      string `toml:"sqs_endpoint_url,omitempty"`
	CallbackURL      string `toml:"callback_url,omitempty"`
	WebSocketURL     string `toml:"websocket_url,omitempty"`
	// Mapping turns EventBridge events that are not envelopes into
	// envelopes (see pubsub.Mapping).
	Mapping *pubsub.Mapping `toml:"mapping,omitempty"`
}

// DefaultConfigPath is $XDG_CONFIG_HOME/socks/config.toml, else
// $HOME/.config/socks/config.toml ("" when neither is set).
func DefaultConfigPath(getenv func(string) string) string {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "socks", "config.toml")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "socks", "config.toml")
	}
	return ""
}

// FileError is an error in the config file itself: one that cannot be
// read, does not parse, or holds what socks does not know. No flag of the
// command fixes it, so it comes without a usage hint.
type FileError struct{ Err error }

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// loadProfile reads the config file and returns the selected profile and
// its name ("" when none is selected). A missing file is no error unless it
// was named explicitly or a profile was asked for.
func loadProfile(f Flags, getenv func(string) string) (Profile, string, string, error) {
	path, explicit := f.ConfigFile, f.ConfigFile != ""
	if path == "" {
		path, explicit = getenv(EnvConfig), getenv(EnvConfig) != ""
	}
	if path == "" {
		path = DefaultConfigPath(getenv)
	}
	name := f.ConfigProfile
	if name == "" {
		name = getenv(EnvConfigProfile)
	}
	var file File
	if path != "" {
		src, err := os.ReadFile(path)
		var md toml.MetaData
		if err == nil {
			md, err = decodeFile(path, src, &file)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if explicit {
				return Profile{}, "", path, &FileError{fmt.Errorf("config file %s does not exist (from --config or %s)", path, EnvConfig)}
			}
			path = ""
		case err != nil:
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return Profile{}, "", path, &FileError{fmt.Errorf("config file %s: %w", path, pe.Err)}
			}
			return Profile{}, "", path, &FileError{err}
		default:
			if undecoded := md.Undecoded(); len(undecoded) > 0 {
				keys := make([]string, len(undecoded))
				for i, k := range undecoded {
					keys[i] = k.String()
				}
				return Profile{}, "", path, &FileError{fmt.Errorf("config file %s: unknown setting %s (known: %s)", path, strings.Join(keys, ", "), knownKeys)}
			}
		}
	}
	if name == "" {
		name = file.DefaultProfile
	}
	if name == "" {
		return Profile{}, "", path, nil
	}
	p, ok := file.Profiles[name]
	if !ok {
		where := "no config file was found"
		if path != "" {
			where = fmt.Sprintf("%s has %s", path, profileNames(file))
		}
		return Profile{}, "", path, fmt.Errorf("unknown config profile %q: %s", name, where)
	}
	return p, name, path, nil
}

const knownKeys = "default_profile, and per profile: backend, state_dir, stack, region, aws_profile, endpoint_url, dynamodb_endpoint_url, sqs_endpoint_url, callback_url, websocket_url, mapping (topics, users, body)"

func profileNames(f File) string {
	if len(f.Profiles) == 0 {
		return "no profiles"
	}
	names := make([]string, 0, len(f.Profiles))
	for n := range f.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return "profiles " + strings.Join(names, ", ")
}

// decodeFile decodes src, the config file path, into f. Its errors are
// in the user's words, naming the file, the line and the setting: the TOML
// library's own say "toml: line 3 (last key ...): incompatible types: TOML
// value has type int64; destination has type string".
func decodeFile(path string, src []byte, f *File) (toml.MetaData, error) {
	var raw map[string]any
	md, err := toml.Decode(string(src), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := outOfRange(pe, src)
			if msg == "" {
				msg = strings.TrimSuffix(pe.Message, ".")
			}
			return md, fmt.Errorf("config file %s, line %d: %s", path, pe.Position.Line, msg)
		}
		return md, fmt.Errorf("config file %s: %w", path, err)
	}
	if err := checkTypes(md, raw, src); err != nil {
		return md, fmt.Errorf("config file %s%w", path, err)
	}
	md, err = toml.Decode(string(src), f)
	if err != nil {
		return md, fmt.Errorf("config file %s: %w", path, err)
	}
	return md, nil
}

// outOfRange says in words that the number pe points at does not fit
// ("" when pe is not about such a number): the TOML library's own words
// are "99999999999999999999 is out of range for int64", naming neither the
// key nor the range. The literal is read again from src, at the position
// the library gives, rather than from its message.
func outOfRange(pe toml.ParseError, src []byte) string {
	start, n := pe.Position.Start, pe.Position.Len
	if n <= 0 || start < 0 || start+n > len(src) {
		return ""
	}
	lit := string(src[start : start+n])
	// What kind of number it is, by how it is written: ParseInt also
	// says out of range for a fraction with many digits before its point.
	kind := numberWords(lit)
	var lo, hi string
	if kind == wholeNumber {
		if _, err := strconv.ParseInt(lit, 0, 64); !errors.Is(err, strconv.ErrRange) {
			return ""
		}
		lo, hi = strconv.FormatInt(math.MinInt64, 10), strconv.FormatInt(math.MaxInt64, 10)
	} else {
		if _, err := strconv.ParseFloat(strings.ReplaceAll(lit, "_", ""), 64); !errors.Is(err, strconv.ErrRange) {
			return ""
		}
		lo, hi = strconv.FormatFloat(-math.MaxFloat64, 'g', -1, 64), strconv.FormatFloat(math.MaxFloat64, 'g', -1, 64)
	}
	key := pe.LastKey
	if key == "" {
		key = "a setting"
	}
	msg := fmt.Sprintf("the number %s given for %s is out of range: %s in a TOML file must lie between %s and %s", lit, key, kind, lo, hi)
	if _, want := wantedType(toml.Key(strings.Split(pe.LastKey, "."))); want != "" && pe.LastKey != "" {
		msg += fmt.Sprintf(" (and %s must be %s)", key, want)
	}
	return msg
}

const wholeNumber = "a whole number"

// numberWords says what kind of TOML number lit is written as: a whole
// number (decimal, or with 0x, 0o or 0b), or one with a fraction, an
// exponent or both (TOML's floats).
func numberWords(lit string) string {
	l := strings.TrimLeft(lit, "+-")
	if strings.HasPrefix(l, "0x") || strings.HasPrefix(l, "0o") || strings.HasPrefix(l, "0b") {
		return wholeNumber
	}
	frac, exp := strings.Contains(l, "."), strings.ContainsAny(l, "eE")
	switch {
	case frac && exp:
		return "a number with a fraction and an exponent"
	case frac:
		return "a number with a fraction"
	case exp:
		return "a number with an exponent"
	}
	return wholeNumber
}

// TOML types as MetaData.Type names them.
const (
	tomlString = "String"
	tomlTable  = "Hash"
	tomlArray  = "Array"
)

// checkTypes finds the first known setting of the wrong type (unknown keys
// are the Undecoded check's) and says what it must be. The error starts
// with ", line N: " when the line is known, else ": ".
func checkTypes(md toml.MetaData, raw map[string]any, src []byte) error {
	for _, k := range md.Keys() {
		typ, want := wantedType(k)
		if typ == "" {
			continue
		}
		got := md.Type(k...)
		if got == typ && typ == tomlArray {
			// A list of strings, every item.
			items, _ := valueAt(raw, k).([]any)
			for _, it := range items {
				if _, ok := it.(string); !ok {
					got = "a list holding " + tomlTypeName(fmt.Sprintf("%T", it))
					break
				}
			}
		}
		if got == typ {
			continue
		}
		where := ": "
		if line := keyLine(src, k); line > 0 {
			where = fmt.Sprintf(", line %d: ", line)
		}
		return fmt.Errorf("%s%s must be %s, not %s", where, k, want, tomlTypeName(got))
	}
	return nil
}

// wantedType is the TOML type of setting k and how to say it ("" for a
// key socks does not know).
func wantedType(k toml.Key) (typ, want string) {
	is := func(i int, name string) bool { return strings.EqualFold(k[i], name) }
	switch {
	case len(k) == 1 && is(0, "default_profile"):
		return tomlString, "a string in quotes"
	case len(k) == 1 && is(0, "profiles"):
		return tomlTable, "a table of settings ([profiles.NAME])"
	case !is(0, "profiles"):
		return "", ""
	case len(k) == 2:
		return tomlTable, fmt.Sprintf("a table of settings ([profiles.%s])", k[1])
	case len(k) == 3 && is(2, "mapping"):
		return tomlTable, fmt.Sprintf("a table ([profiles.%s.mapping])", k[1])
	case len(k) == 3:
		if _, ok := fieldFor(k[2]); ok {
			return tomlString, "a string in quotes"
		}
	case len(k) == 4 && is(2, "mapping") && is(3, "topics"):
		return tomlArray, `a list of strings (["/detail/id"])`
	case len(k) == 4 && is(2, "mapping") && (is(3, "users") || is(3, "body")):
		return tomlString, "a string in quotes"
	}
	return "", ""
}

// tomlTypeName says a MetaData.Type name, or the Go type of a decoded
// array item, in TOML's words.
func tomlTypeName(t string) string {
	switch t {
	case "String", "string":
		return "a string"
	case "Integer", "int64":
		return "an integer"
	case "Float", "float64":
		return "a number with a fraction or an exponent"
	case "Bool", "bool":
		return "a boolean"
	case "Datetime", "time.Time", "toml.LocalDate", "toml.LocalTime", "toml.LocalDatetime":
		return "a date or time"
	case "Array", "[]interface {}":
		return "a list"
	case "Hash", "map[string]interface {}":
		return "a table"
	case "ArrayHash", "[]map[string]interface {}":
		return "a list of tables ([[...]])"
	}
	if strings.HasPrefix(t, "a list holding ") {
		return t
	}
	return "a value of another type"
}

// valueAt is the decoded value at key k of raw (nil when not there).
func valueAt(raw map[string]any, k toml.Key) any {
	var v any = raw
	for _, part := range k {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// keyLine is the line of src where key k is set or its table begins (0
// when not found, say inside an inline table).
func keyLine(src []byte, k toml.Key) int {
	sts, err := scanTOML(src)
	if err != nil {
		return 0
	}
	for _, st := range sts {
		full := st.key
		if !st.header {
			full = append(slices.Clone(st.table), st.key...)
		}
		if slices.Equal(full, k) {
			return 1 + bytes.Count(src[:st.lineStart], []byte("\n"))
		}
	}
	return 0
}
