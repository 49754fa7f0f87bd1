package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/socks-dev/socks/internal/infile"
	"github.com/socks-dev/socks/internal/text"
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
// $HOME/.config/socks/config.toml (on Windows %USERPROFILE% when HOME is
// unset; "" when neither is set).
func DefaultConfigPath(getenv func(string) string) string {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "socks", "config.toml")
	}
	if home := homeDir(getenv); home != "" {
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

// EnvError is a value of an environment variable socks cannot take. As
// with FileError, no flag of the command fixes it (the error names the
// variable), so it comes without a usage hint.
type EnvError struct{ Err error }

func (e *EnvError) Error() string { return e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

// loadProfile reads the config file and returns the selected profile, its
// name ("" when none is selected), the file and whether the profile is new
// (f.NewProfile). A missing file is no error unless it was named
// explicitly or a profile was asked for.
func loadProfile(f Flags, getenv func(string) string) (prof Profile, name, path string, isNew bool, err error) {
	prof, name, path, err = readProfile(f, getenv)
	var unknown *unknownProfileError
	var missing *missingFileError
	if errors.As(err, &missing) && f.NewProfile {
		// Not made from nothing: a typo in the name would save where no
		// other command reads.
		err = &FileError{fmt.Errorf("%w; to have the profile saved into it, create it empty first", missing)}
	}
	if errors.As(err, &unknown) && f.NewProfile && unknown.from != "default_profile" && unknown.path != "" {
		if unknown.near == "" {
			return Profile{}, unknown.name, unknown.path, true, nil
		}
		// Refused as a likely typo; a user who means a new profile makes
		// it one the file has.
		err = fmt.Errorf("%w; a new profile is not made when its name is this near one the file has: if you mean a new one, add an empty %s to %s and run again",
			err, "["+toml.Key{"profiles", unknown.name}.String()+"]", unknown.path)
	}
	return prof, name, path, false, err
}

// missingFileError is a config file named by --config or SOCKS_CONFIG
// that does not exist.
type missingFileError struct{ path, from string }

func (e *missingFileError) Error() string {
	return fmt.Sprintf("config file %s does not exist (from %s)", e.path, e.from)
}

// unknownProfileError is a selected profile the file lacks.
type unknownProfileError struct {
	name, from string
	// path is the config file, or where it would be when it does not
	// exist ("" when there is no such place).
	path string
	near string // a profile of the file name is a near miss of
	msg  string
}

func (e *unknownProfileError) Error() string { return e.msg }

func readProfile(f Flags, getenv func(string) string) (Profile, string, string, error) {
	path, explicit, namedBy := f.ConfigFile, f.ConfigFile != "", "--config"
	if path == "" {
		path, explicit, namedBy = getenv(EnvConfig), getenv(EnvConfig) != "", "$"+EnvConfig
	}
	// As for the state dir: the shell has expanded ~ already, except in
	// --config=~/x or a quoted value.
	expanded, err := ExpandHome(path, getenv)
	if err != nil {
		err = fmt.Errorf("%s %q: %w", namedBy, path, err)
		if namedBy != "--config" {
			err = &EnvError{err}
		}
		return Profile{}, "", path, err
	}
	path = expanded
	if path == "" {
		path = DefaultConfigPath(getenv)
	}
	name, from := f.ConfigProfile, "--config-profile"
	if name == "" {
		name, from = getenv(EnvConfigProfile), EnvConfigProfile
	}
	var file File
	var src []byte
	wouldBe := path // where the file is, or would be
	if path != "" {
		var err error
		src, err = readConfig(path, path)
		var md toml.MetaData
		if err == nil {
			md, err = decodeFile(path, src, &file)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if explicit {
				return Profile{}, "", path, &FileError{&missingFileError{path, namedBy}}
			}
			path = ""
		case err != nil:
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return Profile{}, "", path, &FileError{fmt.Errorf("config file %s: %w", path, pe.Err)}
			}
			return Profile{}, "", path, &FileError{err}
		default:
			if err := unknownSetting(md, src); err != nil {
				return Profile{}, "", path, &FileError{fmt.Errorf("config file %s%w", path, err)}
			}
			if err := caseTwins(md, src); err != nil {
				return Profile{}, "", path, &FileError{fmt.Errorf("config file %s%w", path, err)}
			}
		}
	}
	if name == "" {
		name, from = file.DefaultProfile, "default_profile"
	}
	if name == "" {
		return Profile{}, "", path, nil
	}
	p, ok := file.Profiles[name]
	if !ok {
		if from == "default_profile" {
			// No flag is wrong: the file names a profile it lacks.
			return Profile{}, "", path, &FileError{fmt.Errorf("config file %s%sdefault_profile is %q, a profile the file does not have (it has %s)%s",
				path, lineOf(src, toml.Key{"default_profile"}), name, profileNames(file), didYouMean(name, file))}
		}
		where := fmt.Sprintf("no config file was found at %s (--config or %s names another)", wouldBe, EnvConfig)
		if wouldBe == "" {
			where = fmt.Sprintf("no config file was found: neither XDG_CONFIG_HOME nor %s is set, so socks looked nowhere (name it with --config or %s)", homeVar(), EnvConfig)
		}
		if path != "" {
			where = fmt.Sprintf("%s has %s%s", path, profileNames(file), didYouMean(name, file))
		}
		msg := fmt.Sprintf("unknown config profile %q: %s", name, where)
		if from == EnvConfigProfile {
			msg += "; the name is from " + EnvConfigProfile
		}
		near := nearest(name, slices.Sorted(maps.Keys(file.Profiles)))
		return Profile{}, "", path, &unknownProfileError{name: name, from: from, path: wouldBe, near: near, msg: msg}
	}
	return p, name, path, nil
}

// unknownSetting says which key of the file socks does not know (nil when
// none): the first, with its line and the known key it most likely
// misspells, and the others after it by name; a key under an unknown table
// is not named again ([profile.p] is one mistake, not one per setting).
// The error starts with ", line N: " when the line is known, else ": ".
func unknownSetting(md toml.MetaData, src []byte) error {
	var top []toml.Key
	seen := map[string]bool{} // top, spelt as TOML
	for _, k := range md.Undecoded() {
		k = firstUnknown(k)
		// k, or a table k is in, named already? (A set, not a search of
		// top: a file may hold a hundred thousand unknown keys.)
		named := false
		for n := 1; n <= len(k) && !named; n++ {
			named = seen[k[:n].String()]
		}
		if !named {
			top = append(top, k)
			seen[k.String()] = true
		}
	}
	if len(top) == 0 {
		return nil
	}
	k := top[0]
	msg := lineOf(src, k) + "unknown setting " + k.String()
	switch hint := misspelt(k); {
	case hint != "":
		msg += ": " + hint
	default:
		msg += " (known: " + knownKeys + ")"
	}
	if len(top) > 1 {
		const listed = 10
		var others []string
		for _, o := range top[1:min(len(top), 1+listed)] {
			others = append(others, o.String())
		}
		msg += "; also unknown: " + strings.Join(others, ", ")
		if more := len(top) - 1 - listed; more > 0 {
			msg += fmt.Sprintf(" and %d more", more)
		}
	}
	return errors.New(msg)
}

// firstUnknown cuts the undecoded key k after its first part socks does
// not know: profile.p.region is the table profile, not a setting of it.
func firstUnknown(k toml.Key) toml.Key {
	is := func(i int, names ...string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(k[i], n) })
	}
	for i := range k {
		var known bool
		switch i {
		case 0:
			known = is(0, "default_profile", "profiles")
		case 1:
			known = is(0, "profiles") // a profile's name
		case 2:
			_, known = fieldFor(k[2])
			known = known || is(2, "mapping")
		case 3:
			known = is(2, "mapping") && is(3, "topics", "users", "body")
		}
		if !known {
			return k[:i+1]
		}
	}
	return k
}

// misspelt says which known key the unknown key k most likely means, or
// that a setting belongs in a profile ("" when nothing is near).
func misspelt(k toml.Key) string {
	last := k[len(k)-1]
	var known []string
	switch {
	case len(k) == 1:
		if _, ok := fieldFor(last); ok || strings.EqualFold(last, "mapping") {
			return "a profile's settings go in a table [profiles.NAME]"
		}
		known = []string{"default_profile", "profiles"}
	case len(k) == 3 && strings.EqualFold(k[0], "profiles"):
		for _, f := range profileFields {
			known = append(known, f.key)
		}
		known = append(known, "mapping")
	case len(k) == 4 && strings.EqualFold(k[0], "profiles") && strings.EqualFold(k[2], "mapping"):
		known = []string{"topics", "users", "body"}
	}
	if near := nearest(last, known); near != "" {
		return "did you mean " + near + "?"
	}
	return ""
}

// nearest is the word of known that word is a slip of (at most two
// letters off, - for _ and case aside on both sides: a profile's name may
// be written either way), "" when none is.
func nearest(word string, known []string) string {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	w := fold(word)
	best, bestD := "", 3
	for _, k := range known {
		if d := text.EditDistance(w, fold(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// caseTwinAdvice ends the error of a key written twice in two cases, in
// the config file (caseTwins) or SOCKS_EVENT_MAPPING (jsonTwins).
const caseTwinAdvice = "keys match whatever their case, so only one of them would count: keep one"

// caseTwins finds a key written twice in different cases (nil when none).
// The TOML library matches keys to settings whatever their case, and of
// two spellings one silently counts: Region = "b" after region = "a" reads
// "a", and a second [Profiles.prod] table replaces [profiles.prod] whole.
// Profile names are matched exactly, as the library does; the profiles
// table itself may be spelt twice (the library merges its profiles).
func caseTwins(md toml.MetaData, src []byte) error {
	canon := func(k toml.Key) string {
		parts := make([]string, len(k))
		for i, p := range k {
			if i == 1 && strings.EqualFold(k[0], "profiles") {
				parts[i] = p
				continue
			}
			parts[i] = strings.ToLower(p)
		}
		return toml.Key(parts).String()
	}
	seen := map[string]toml.Key{}
	for _, k := range md.Keys() {
		if len(k) == 1 && strings.EqualFold(k[0], "profiles") {
			continue
		}
		c := canon(k)
		first, dup := seen[c]
		if !dup {
			seen[c] = k
			continue
		}
		line := ""
		if n := lineNumber(src, first); n > 0 {
			line = fmt.Sprintf("line %d ", n)
		}
		last, was := k[len(k)-1], first[len(first)-1]
		var what string
		switch {
		case md.Type(k...) == tomlTable && len(k) == 2:
			what = fmt.Sprintf("[%s] is profile %s again (%sis [%s])", k, k[1], line, first)
		case md.Type(k...) == tomlTable && len(k) == 3:
			what = fmt.Sprintf("[%s] is profile %s's %s again (%sis [%s])", k, k[1], strings.ToLower(last), line, first)
		case len(k) == 3 && strings.EqualFold(k[0], "profiles"):
			name := strings.ToLower(last)
			if f, ok := fieldFor(last); ok {
				name = f.key
			}
			what = fmt.Sprintf("%s sets profile %s's %s again (%ssets it as %s)", last, k[1], name, line, was)
		case len(k) == 4 && strings.EqualFold(k[0], "profiles"):
			what = fmt.Sprintf("%s sets profile %s's %s %s again (%ssets it as %s)", last, k[1], strings.ToLower(k[2]), strings.ToLower(last), line, was)
		default:
			what = fmt.Sprintf("%s sets %s again (%ssets it as %s)", last, strings.ToLower(c), line, was)
		}
		return fmt.Errorf("%s%s; %s", lineOf(src, k), what, caseTwinAdvice)
	}
	return nil
}

// lineOf is ", line N: " for the line of key k in src, else ": ".
func lineOf(src []byte, k toml.Key) string {
	if n := lineNumber(src, k); n > 0 {
		return fmt.Sprintf(", line %d: ", n)
	}
	return ": "
}

// maxConfigSize bounds what socks reads of a config file: a few settings
// per profile take a few KiB, and a file far larger is not one (a log, an
// image, /dev/zero) and would be read into memory whole.
const maxConfigSize = 1 << 20

// readConfig reads the config file path (found at target: the file its
// symbolic links end at, or path itself), refusing one over maxConfigSize.
// A FIFO, a directory or a device there is refused without waiting (a
// FIFO held open() for ever); /dev/null reads as an empty file.
func readConfig(path, target string) ([]byte, error) {
	src, err := infile.ReadFile(target, maxConfigSize)
	if ne, ok := errors.AsType[*infile.NotRegularError](err); ok {
		return nil, fmt.Errorf("config file %s is %s, not a file: put the settings in a file there, or name one with --config or %s", path, ne.What, EnvConfig)
	}
	if err != nil {
		return nil, err
	}
	if len(src) > maxConfigSize {
		return nil, fmt.Errorf("config file %s is larger than 1 MiB, which no config file of socks needs: is it the right file?", path)
	}
	return src, nil
}

const knownKeys = "default_profile, and per profile: backend, state_dir, stack, region, aws_profile, endpoint_url, dynamodb_endpoint_url, sqs_endpoint_url, callback_url, websocket_url, mapping (topics, users, body)"

// didYouMean is ": did you mean NAME?" for the profile of f that name is
// most likely a slip of ("" when none is near).
func didYouMean(name string, f File) string {
	if near := nearest(name, slices.Sorted(maps.Keys(f.Profiles))); near != "" {
		return ": did you mean " + near + "?"
	}
	return ""
}

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
//
// Every read of the config file comes here (a command's profile, the
// read-modify-write of a save), so that a file nested deeper than
// maxNesting is refused before the library's cost of it grows with the
// square of its depth.
func decodeFile(path string, src []byte, f *File) (toml.MetaData, error) {
	switch line, why := nestedTooDeep(src); why {
	case "deep":
		return toml.MetaData{}, fmt.Errorf("config file %s, line %d: nested more than %d deep (tables, dotted keys, arrays and inline tables counted together), where a socks config needs 4 at most: is it the right file?", path, line, maxNesting)
	case "names":
		return toml.MetaData{}, fmt.Errorf("config file %s, line %d: the names of its keys, each spelt out with the tables it is in, come to more than %d MB by here, where a socks config's come to a few KB: is it the right file?", path, line, maxNames>>20)
	}
	var raw map[string]any
	md, err := toml.Decode(string(src), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := outOfRange(pe, src)
			if msg == "" {
				msg = definedTwice(pe, src)
			}
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

// definedTwice says in words that a key or table pe points at is written
// twice, with the line of each ("" when pe is not about that): the TOML
// library's words are "Key 'profiles.p' has already been defined".
func definedTwice(pe toml.ParseError, src []byte) string {
	quoted, ok := strings.CutPrefix(pe.Message, "Key '")
	if !ok {
		return ""
	}
	if quoted, ok = strings.CutSuffix(quoted, "' has already been defined."); !ok {
		return ""
	}
	k, err := (&scanner{src: []byte(quoted)}).key()
	if err != nil {
		return ""
	}
	sts, err := scanTOML(src)
	if err != nil {
		return ""
	}
	for _, st := range sts {
		full := st.key
		if !st.header {
			full = append(slices.Clone(st.table), st.key...)
		}
		first := 1 + bytes.Count(src[:st.lineStart], []byte("\n"))
		if !slices.Equal(full, k) || first >= pe.Position.Line {
			continue
		}
		if st.header {
			return fmt.Sprintf("[%s] is written twice (line %d and line %d), which TOML does not allow: make them one table", toml.Key(k), first, pe.Position.Line)
		}
		return fmt.Sprintf("%s is set twice (line %d and line %d): keep one", toml.Key(k), first, pe.Position.Line)
	}
	return ""
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
		return fmt.Errorf("%s%s must be %s, not %s", lineOf(src, k), k, want, tomlTypeName(got))
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

// lineNumber is the line of src where key k is set or its table begins,
// else where the first key under it is ([profile.p] for the table
// profile); 0 when not found, say inside an inline table.
func lineNumber(src []byte, k toml.Key) int {
	sts, err := scanTOML(src)
	if err != nil {
		return 0
	}
	under := 0
	for _, st := range sts {
		full := st.key
		if !st.header {
			full = append(slices.Clone(st.table), st.key...)
		}
		line := 1 + bytes.Count(src[:st.lineStart], []byte("\n"))
		if slices.Equal(full, k) {
			return line
		}
		if under == 0 && len(full) > len(k) && slices.Equal(full[:len(k)], k) {
			under = line
		}
	}
	return under
}
