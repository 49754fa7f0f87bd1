package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"

	"github.com/socks-dev/socks/internal/atomicfile"
	"github.com/socks-dev/socks/internal/infile"
	"github.com/socks-dev/socks/internal/writable"
)

// fileHeader opens a config file socks writes whole.
const fileHeader = "# socks config (docs: README \"Local vs AWS\"); socks deploy updates the URLs.\n"

// SaveProfile applies update to the profile name of the config file at path
// (creating the file or the profile when missing) and writes back only what
// the update changed: a changed key's value is replaced on its line, a new
// key goes after the last key of the profile's table, a new profile becomes
// a table at the end. Comments, blank lines, order, unknown keys and every
// other byte stay as they were. The result is read back before it is
// written; it must decode to exactly the updated File.
//
// When the profile is written in a shape a line edit cannot change safely
// (an inline table, dotted keys from a parent table), SaveProfile keeps the
// original next to it (config.toml.bak) and rewrites the whole file; the
// returned warning says so, in the user's words. A file that is not TOML is
// an error and stays untouched, and so does a file this user may not
// write (made read-only): SaveProfile refuses it, saying how to make it
// writable, where the rename would have replaced it. Writes go through a
// temporary file renamed over the original, with the original's
// permission bits.
func SaveProfile(path, name string, update func(*Profile)) (warning string, err error) {
	if path == "" || name == "" {
		return "", fmt.Errorf("no config file or profile to save to")
	}
	// Write to the file a symlink points at (dotfile managers link it),
	// not over the link.
	target, err := linkTarget(path)
	if err != nil {
		return "", fileError(path, err)
	}
	// Another process may save into the same file at once: the lock on
	// the directory makes it wait, and (where there is no lock) each
	// attempt checks just before its rename that the file is still what it
	// read, and starts again when it is not.
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", fileError(path, err)
	}
	unlock, err := lockDir(filepath.Dir(target))
	if err != nil {
		return "", fmt.Errorf("config file %s: %w", path, err)
	}
	defer unlock()
	for range saveAttempts {
		warning, err = saveOnce(path, target, name, update)
		if !errors.Is(err, errChanged) {
			return warning, err
		}
	}
	return "", fmt.Errorf("config file %s: it kept changing while socks saved into it; try again", path)
}

const saveAttempts = 5

// fileError is err about the config file path in words: "config file X:
// not a directory", not "config file X: lstat X: not a directory".
func fileError(path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Path == path {
		err = pe.Err
	}
	return fmt.Errorf("config file %s: %w", path, err)
}

// maxLinks bounds the symbolic links linkTarget follows, as the kernel
// does (Linux's ELOOP after 40).
const maxLinks = 40

// linkTarget returns the file a save into path writes: path itself, or
// the file at the end of the symbolic links path is, even when that file
// does not exist yet (a link made before the first save).
func linkTarget(path string) (string, error) {
	if t, err := filepath.EvalSymlinks(path); err == nil {
		return t, nil
	}
	p := path
	for range maxLinks {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		dest, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(p), dest)
		}
		p = dest
	}
	return "", fmt.Errorf("too many levels of symbolic links (a loop?)")
}

var errChanged = errors.New("changed while saving")

func saveOnce(path, target, name string, update func(*Profile)) (string, error) {
	orig, err := readConfig(path, target)
	exists := err == nil
	if _, ok := errors.AsType[*fs.PathError](err); ok && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("config file %s: %w", path, err)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err // too large to be a config file
	}
	perm := fs.FileMode(0o600)
	if exists {
		fi, err := os.Stat(target)
		if err != nil {
			return "", fmt.Errorf("config file %s: %w", path, err)
		}
		perm = fi.Mode().Perm()
	}
	// old and want are decoded separately so that update cannot reach
	// into old through a shared pointer (the mapping).
	var old, want File
	var oldMeta toml.MetaData
	if len(orig) > 0 {
		if oldMeta, err = decodeFile(path, orig, &old); err != nil {
			return "", err
		}
		if _, err := toml.Decode(string(orig), &want); err != nil {
			return "", fmt.Errorf("config file %s: %w", path, err)
		}
		// decodeFile refused a value of the wrong type, which the library
		// lets pass as an empty table (saving would lose it).
	}
	if want.Profiles == nil {
		want.Profiles = map[string]Profile{}
	}
	p, had := want.Profiles[name]
	update(&p)
	want.Profiles[name] = p
	if exists && had && reflect.DeepEqual(old.Profiles[name], p) {
		return "", nil // nothing changed: leave the file alone
	}
	if exists {
		if err := notWritable(path, target); err != nil {
			return "", err
		}
	}
	commit := func(body []byte) error {
		err := files.Replace(target, body, perm, func() error {
			// Still the bytes this attempt started from?
			now, err := readUpTo(target, len(orig)+1)
			if errors.Is(err, fs.ErrNotExist) && !exists {
				return nil
			}
			if err != nil || !bytes.Equal(now, orig) {
				return errChanged
			}
			return nil
		})
		if err != nil && !errors.Is(err, errChanged) {
			return fmt.Errorf("config file %s: writing it: %w", path, err)
		}
		return err
	}
	if len(orig) == 0 {
		body, err := encodeWhole(want)
		if err != nil {
			return "", err
		}
		return "", commit(body)
	}

	edited, reason := editProfile(orig, old.Profiles[name], p, had, name)
	if reason == "" {
		if verifyEdit(edited, oldMeta, want, name, old.Profiles[name], p) {
			return "", commit(edited)
		}
		reason = "an edit in place did not read back as intended"
	}
	backup, err := keepBackup(target, orig, perm)
	if err != nil {
		return "", fmt.Errorf("config file %s: keeping a copy before rewriting it: %w", path, err)
	}
	body, err := encodeWhole(want)
	if err != nil {
		return "", err
	}
	if err := commit(body); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s could not be edited in place (%s), so socks rewrote it whole and its comments and layout are gone; the original is kept in %s",
		path, reason, backup), nil
}

// notWritable is the error of a config file (path, the link the user
// named, or target, the file it is) that this user may not write, else
// nil. A save renames a new file over the old one, which the directory's
// permissions allow whatever the file's: it would replace a file the
// user made read-only to keep it as it is. So SaveProfile asks first and
// refuses before it writes anything (a temporary file, a backup). Any
// other failure to ask is left to the write, which says what it is.
func notWritable(path, target string) error {
	err := writable.Check(target)
	switch {
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("config file %s is on a file system mounted read-only: remount it read-write, or pass --config naming a file on a writable one", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("config file %s is not writable by this user (permission denied), and socks will not replace a file kept read-only: make it writable (%s), or pass --config naming another file",
			path, writable.Fix(path))
	}
	return nil
}

// encodeWhole writes f as a new file, header comment first, and checks it
// reads back as f.
func encodeWhole(f File) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(fileHeader)
	if err := toml.NewEncoder(&buf).Encode(f); err != nil {
		return nil, err
	}
	var back File
	if _, err := toml.Decode(buf.String(), &back); err != nil || !reflect.DeepEqual(back, f) {
		return nil, fmt.Errorf("writing the config file: it would not read back as written (%v)", err)
	}
	return buf.Bytes(), nil
}

// verifyEdit reports whether edited decodes to exactly want and holds every
// key the original held (unknown ones too), plus only the keys of the
// profile the update set.
func verifyEdit(edited []byte, oldMeta toml.MetaData, want File, name string, oldP, newP Profile) bool {
	var got File
	meta, err := toml.Decode(string(edited), &got)
	if err != nil || !reflect.DeepEqual(got, want) {
		return false
	}
	prof := toml.Key{"profiles", name}
	added := map[string]bool{"profiles": true, prof.String(): true}
	removed := map[string]bool{}
	for _, f := range profileFields {
		o, n := oldP.string(f), newP.string(f)
		k := append(prof[:2:2], f.key).String()
		if o == "" && n != "" {
			added[k] = true
		}
		if o != "" && n == "" {
			removed[k] = true
		}
	}
	// Keys are compared with the profiles table spelt as File spells it
	// ([Profiles.prod] holds profile prod too), and a profile's settings
	// spelt as their fields are.
	spell := func(k toml.Key) string {
		k = settingPath(k)
		if len(k) == 3 && k[0] == "profiles" {
			if f, ok := fieldFor(k[2]); ok {
				k = toml.Key{k[0], k[1], f.key}
			}
		}
		return k.String()
	}
	have := map[string]bool{}
	for _, k := range meta.Keys() {
		have[spell(k)] = true
	}
	had := map[string]bool{}
	for _, k := range oldMeta.Keys() {
		had[spell(k)] = true
		if !have[spell(k)] && !removed[spell(k)] {
			return false
		}
	}
	for k := range have {
		if !had[k] && !added[k] {
			return false
		}
	}
	return true
}

// profileField is one string setting of Profile and its key in the file.
type profileField struct {
	index int
	key   string
}

// profileFields are Profile's string settings in declaration order (the
// order new keys are written in).
var profileFields = func() []profileField {
	var fs []profileField
	t := reflect.TypeFor[Profile]()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() != reflect.String {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		fs = append(fs, profileField{index: i, key: key})
	}
	return fs
}()

// fieldFor returns the setting a key of a profile's table sets. The TOML
// library matches a key to a setting whatever its case (websocket_url
// first, else WebSocket_URL), so SaveProfile must too.
func fieldFor(key string) (profileField, bool) {
	for _, f := range profileFields {
		if f.key == key {
			return f, true
		}
	}
	for _, f := range profileFields {
		if strings.EqualFold(f.key, key) {
			return f, true
		}
	}
	return profileField{}, false
}

// settingPath spells the first part of a key path as File does when the
// TOML library takes it for File's profiles (whatever its case).
func settingPath(path []string) []string {
	if len(path) == 0 || path[0] == "profiles" || !strings.EqualFold(path[0], "profiles") {
		return path
	}
	return append([]string{"profiles"}, path[1:]...)
}

func (p Profile) string(f profileField) string {
	return reflect.ValueOf(p).Field(f.index).String()
}

// editProfile changes in src only the keys of profile name whose values
// differ between oldP and newP (had: the profile is in the file). It
// returns the edited text, or why it cannot edit in place.
func editProfile(src []byte, oldP, newP Profile, had bool, name string) ([]byte, string) {
	if !reflect.DeepEqual(oldP.Mapping, newP.Mapping) {
		return nil, "the update changes the event mapping"
	}
	stmts, err := scanTOML(src)
	if err != nil {
		return nil, "socks could not follow its layout"
	}
	prof := []string{"profiles", name}
	var header, last *statement
	keys := map[string]*statement{}
	for i := range stmts {
		st := &stmts[i]
		if st.header {
			if equalPath(settingPath(st.key), prof) {
				if header != nil {
					return nil, fmt.Sprintf("profile %s has two tables, spelt in different cases", name)
				}
				header = st
			}
			continue
		}
		table := settingPath(st.table)
		full := settingPath(append(append([]string{}, st.table...), st.key...))
		switch {
		case !hasPrefix(full, prof) && !hasPrefix(prof, full):
			// another profile, or not a profile
		case equalPath(table, prof):
			last = st
			if len(st.key) != 1 {
				break
			}
			if f, ok := fieldFor(st.key[0]); ok {
				if keys[f.key] != nil {
					return nil, fmt.Sprintf("profile %s sets %s twice, spelt in different cases", name, f.key)
				}
				keys[f.key] = st
			}
		case hasPrefix(table, prof):
			// a sub-table of the profile ([profiles.NAME.mapping])
		case hasPrefix(prof, full) && len(full) == 1:
			return nil, "its profiles are written as an inline table"
		case hasPrefix(prof, full):
			return nil, fmt.Sprintf("profile %s is written as an inline table", name)
		default:
			return nil, fmt.Sprintf("profile %s is written with dotted keys", name)
		}
	}
	nl := "\n"
	if i := bytes.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		nl = "\r\n"
	}

	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	var lines []string // key = value lines to add
	for _, f := range profileFields {
		o, n := oldP.string(f), newP.string(f)
		if o == n {
			continue
		}
		st := keys[f.key]
		switch {
		case st == nil && n == "":
			return nil, fmt.Sprintf("socks could not find key %s of profile %s", f.key, name)
		case st == nil:
			lines = append(lines, f.key+" = "+quoteValue(n, ""))
		case n == "":
			edits = append(edits, edit{st.lineStart, st.end, ""})
		default:
			edits = append(edits, edit{st.valStart, st.valEnd, quoteValue(n, string(src[st.valStart:st.valEnd]))})
		}
	}
	if len(lines) > 0 || !had {
		var b strings.Builder
		pos := len(src)
		if header != nil {
			at, indent := header, ""
			if last != nil {
				at = last
				line := src[last.lineStart:last.end]
				indent = string(line[:len(line)-len(bytes.TrimLeft(line, " \t"))])
			}
			pos = at.end
			if pos == len(src) && !endsWithNL(src) {
				b.WriteString(nl)
			}
			for _, l := range lines {
				b.WriteString(indent + l + nl)
			}
		} else {
			if !endsWithNL(src) {
				b.WriteString(nl)
			}
			if !bytes.HasSuffix(src, []byte(nl+nl)) && strings.TrimSpace(string(src)) != "" {
				b.WriteString(nl)
			}
			b.WriteString("[profiles." + quoteKey(name) + "]" + nl)
			for _, l := range lines {
				b.WriteString(l + nl)
			}
		}
		edits = append(edits, edit{pos, pos, b.String()})
	}
	// Apply from the end so earlier offsets stay valid.
	out := append([]byte{}, src...)
	for i := len(edits) - 1; i >= 0; i-- {
		// edits are in field order, not file order: pick the latest.
		j := 0
		for k := 1; k <= i; k++ {
			if edits[k].start > edits[j].start {
				j = k
			}
		}
		e := edits[j]
		edits[j], edits[i] = edits[i], edits[j]
		out = append(out[:e.start:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out, ""
}

func endsWithNL(b []byte) bool { return len(b) == 0 || b[len(b)-1] == '\n' }

// quoteValue writes v as a TOML string, literal ('...') when the value it
// replaces was literal and v can be, else basic ("...").
func quoteValue(v, old string) string {
	if strings.HasPrefix(old, "'") && !strings.HasPrefix(old, "'''") &&
		!strings.ContainsFunc(v, func(r rune) bool { return r == '\'' || r < 0x20 || r == 0x7f }) {
		return "'" + v + "'"
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]string{"k": v}); err != nil {
		// Strings always encode; verifyEdit would catch it anyway.
		return `""`
	}
	return strings.TrimPrefix(strings.TrimSpace(buf.String()), "k = ")
}

// quoteKey writes a key part bare when TOML allows it, else quoted.
func quoteKey(k string) string {
	if k != "" && !strings.ContainsFunc(k, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return k
	}
	return quoteValue(k, "")
}

func equalPath(a, b []string) bool { return len(a) == len(b) && hasPrefix(a, b) }

func hasPrefix(s, prefix []string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := range prefix {
		if s[i] != prefix[i] {
			return false
		}
	}
	return true
}

// keepBackup copies the original next to the file, as FILE.bak or, when
// that holds something else, the first free FILE.bak.N; it never replaces
// an existing backup. It returns the copy's path.
func keepBackup(path string, orig []byte, perm fs.FileMode) (string, error) {
	for n := 0; n < 100; n++ {
		bak := path + ".bak"
		if n > 0 {
			bak = fmt.Sprintf("%s.bak.%d", path, n)
		}
		if b, err := readUpTo(bak, len(orig)+1); err == nil && bytes.Equal(b, orig) {
			return bak, nil
		}
		err := files.Create(bak, orig, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return bak, err
	}
	return "", fmt.Errorf("%s.bak and 99 numbered copies exist already", path)
}

// files writes the config file and its backups; tests make its steps
// fail.
var files atomicfile.Writer

// readUpTo reads at most n bytes of the file at path: enough to tell
// whether it holds bytes n-1 long, never the whole of a file that is
// something else (a FILE.bak of the user's own, a file replaced meanwhile).
// Anything but a regular file there (a FIFO put at FILE.bak) is an error,
// returned without waiting.
func readUpTo(path string, n int) ([]byte, error) {
	return infile.ReadFile(path, int64(n)-1)
}
