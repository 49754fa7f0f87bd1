package config

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// deepShapes are the ways a TOML file nests, n levels deep.
var deepShapes = []struct {
	name string
	file func(n int) string
}{
	{"inline tables", func(n int) string { return "x = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) + "\n" }},
	{"arrays of inline tables", func(n int) string {
		return "x = " + strings.Repeat("[{a=", n/2) + "1" + strings.Repeat("}]", n/2) + "\n"
	}},
	{"arrays", func(n int) string { return "x = " + strings.Repeat("[", n) + "1" + strings.Repeat("]", n) + "\n" }},
	{"a dotted key", func(n int) string { return strings.Repeat("a.", n) + "a = 1\n" }},
	{"a table header", func(n int) string { return "[" + strings.Repeat("a.", n-1) + "a]\nb = 1\n" }},
	{"dotted keys in inline tables", func(n int) string {
		return "x = {" + strings.Repeat("a.a={", n/3) + "b=1" + strings.Repeat("}", n/3) + "}\n"
	}},
}

// allocated is how many bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The TOML library pays for each level of nesting with the whole key path
// above it, so its cost grows with the square of the depth: a 400 KB
// config file of inline tables 100,000 deep took all 24 GB of a machine.
// Measured here at small depths only: twice as deep costs about four
// times as much.
func TestTheLibraryPaysForDeepNestingQuadratically(t *testing.T) {
	for _, shape := range deepShapes {
		if shape.name == "arrays" {
			continue // linear in the library; bounded all the same
		}
		decode := func(n int) uint64 {
			return allocated(func() {
				var v map[string]any
				if _, err := toml.Decode(shape.file(n), &v); err != nil {
					t.Fatalf("%s: %v", shape.name, err)
				}
			})
		}
		small, big := decode(400), decode(800)
		if big < 3*small {
			t.Errorf("%s: %d bytes at depth 400, %d at 800: no longer quadratic (the bound may be loosened)", shape.name, small, big)
		}
	}
}

// TestAConfigFileNestedTooDeepIsRefusedBeforeDecoding: nesting deeper than
// maxNesting is refused, naming the file and the line, before the library
// sees it, so what it costs stays small however deep the file goes.
func TestAConfigFileNestedTooDeepIsRefusedBeforeDecoding(t *testing.T) {
	const path = "/home/geek/.config/socks/config.toml"
	for _, shape := range deepShapes {
		refuse := func(n int) uint64 {
			src := []byte("# mine\n" + shape.file(n))
			var err error
			bytes := allocated(func() {
				var f File
				_, err = decodeFile(path, src, &f)
			})
			want := "config file " + path + ", line 2: nested more than 32 deep"
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s %d deep: error = %v, want %q", shape.name, n, err, want)
			}
			return bytes
		}
		small, big := refuse(500), refuse(1000)
		if big > 64<<10 || big > 3*small {
			t.Errorf("%s: reading it cost %d bytes at depth 500, %d at 1000", shape.name, small, big)
		}
	}

	// Every way socks reads the file goes through the check: the profile
	// every command resolves, and the read-modify-write of a save
	// (socks config set, deploy).
	body := "# mine\n[profiles.dev]\nregion = 'r'\n" + deepShapes[0].file(1000)
	file := writeFile(t, body)
	_, err := Resolve(Flags{ConfigFile: file, ConfigProfile: "dev"}, env(map[string]string{"HOME": "/h"}))
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "config file "+file+", line 4: nested more than 32 deep") {
		t.Errorf("Resolve: error = %v, want a file error naming line 4", err)
	}
	_, err = SaveProfile(file, "dev", func(p *Profile) { p.Region = "x" })
	if err == nil || !strings.Contains(err.Error(), "config file "+file+", line 4: nested more than 32 deep") {
		t.Errorf("SaveProfile: error = %v, want the nesting refused", err)
	}
	if got, _ := os.ReadFile(file); string(got) != body {
		t.Errorf("SaveProfile changed the refused file")
	}
}

// maxNesting deep is taken, one more is not, whatever the shape.
func TestNestingUpToTheBoundIsTaken(t *testing.T) {
	for _, shape := range deepShapes {
		n := maxNesting
		if shape.name == "arrays of inline tables" || shape.name == "dotted keys in inline tables" {
			continue // these step by 2 and 3: see the nesting depths below
		}
		if at, _ := nestedTooDeep([]byte(shape.file(n))); at != 0 {
			t.Errorf("%s %d deep: refused at line %d", shape.name, n, at)
		}
		if at, why := nestedTooDeep([]byte(shape.file(n + 1))); at != 1 || why != "deep" {
			t.Errorf("%s %d deep: got line %d, want it refused at line 1", shape.name, n+1, at)
		}
	}
	for _, src := range []string{
		"x = " + strings.Repeat("[{a=", 16) + "1" + strings.Repeat("}]", 16),            // 32
		"x = {" + strings.Repeat("a.a={", 15) + "b.c=1" + strings.Repeat("}", 15) + "}", // 1 + 30 + 1
		"[[" + strings.Repeat("a.", 30) + "a]]",                                         // 31 + the array
	} {
		if at, complete := nesting([]byte(src), maxNesting); at != -1 || !complete {
			t.Errorf("%q: refused at %d (complete %v)", src, at, complete)
		}
		if at, _ := nesting([]byte(src), maxNesting-1); at < 0 {
			t.Errorf("%q: taken %d deep", src, maxNesting-1)
		}
	}
}

// validFiles are TOML files whose strings, comments and keys hold what
// looks like nesting and is not.
var validFiles = []string{
	sampleFile,
	"",
	"\ufeffa = 1",
	"\xfe\xff[a]",
	"[profiles.dev.mapping]\ntopics = [\"/detail/entityId\", '/a']\nusers = \"/detail/userId\"\n",
	"profiles = {p = {mapping = {topics = [\"/t\"]}}}\n",
	"a = \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"\n",
	"a = '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\'\n# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
	"a = \"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\\\" # \" [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
	"a = \"\"\"\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\\\"\"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\"\"\"\"\"\nb = 1\n",
	"a = '''\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\''\n''[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['''''\nb = [1]\n",
	"a = \"\"\"\\\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\"\"\n",
	"\"a.[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\" = 1\n['x.[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]' . \"]]\"]\nb = 2\n",
	"[[a]]\n[[a.b]]\n[a.b.c]\nd = [ # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n  1979-05-27 07:32:00Z, # ,\n  {e = [\"]\"], f.g = '}'},\n  [], [ ], {},\n]\n",
	"a = [1,2,]\nb = {c = 1, d = {e = 2}}\r\nc = 'x' # ]\r\n[ t . 'u' ] # [\n  v = inf\n  w = -nan\n  x = +1_000\n  y = 0xdead_beef\n  z = 1e-3\n",
	"a = 07:32:00\nb = 1979-05-27\nc = 1979-05-27T07:32:00.999\nd = [true, false]\n",
}

// treeDepth is how deep the containers of a decoded TOML value go (the
// document itself is 0).
func treeDepth(v reflect.Value) int {
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	d := 0
	switch v.Kind() {
	case reflect.Map:
		for _, k := range v.MapKeys() {
			d = max(d, treeDepth(v.MapIndex(k)))
		}
	case reflect.Slice:
		for i := range v.Len() {
			d = max(d, treeDepth(v.Index(i)))
		}
	default:
		return 0
	}
	return d + 1
}

// checkNestingAgainstTheLibrary checks the scan against the library on a
// file the library decodes: the scan reads it to its end; it never
// refuses the file at its own depth (the scan never counts more than
// there is, so a valid file within the bound is never refused); and it
// refuses the file at half its depth (the scan counts at least half: an
// array of tables is 2 levels, its header's segment 1).
func checkNestingAgainstTheLibrary(t *testing.T, src string) {
	t.Helper()
	var v map[string]any
	if _, err := toml.Decode(src, &v); err != nil {
		t.Fatalf("%q does not decode: %v", src, err)
	}
	depth := treeDepth(reflect.ValueOf(v)) - 1
	if at, complete := nesting([]byte(src), depth); at != -1 || !complete {
		t.Fatalf("%q, %d deep: refused at offset %d (read to the end: %v)", src, depth, at, complete)
	}
	if depth > 0 {
		if at, _ := nesting([]byte(src), (depth-1)/2); at < 0 {
			t.Fatalf("%q, %d deep: taken within %d", src, depth, (depth-1)/2)
		}
	}
}

func TestValidConfigFilesPassTheNestingCheck(t *testing.T) {
	for _, src := range validFiles {
		checkNestingAgainstTheLibrary(t, src)
		var f File
		if _, err := decodeFile("/c.toml", []byte(src), &f); err != nil && strings.Contains(err.Error(), "nested") {
			t.Errorf("%q: %v", src, err)
		}
	}
}

// FuzzNestingAgreesWithTheLibrary: on any file the library decodes, the
// nesting scan reads to the end, never refuses it within its depth, and
// counts at least half of it.
func FuzzNestingAgreesWithTheLibrary(f *testing.F) {
	for _, s := range validFiles {
		f.Add(s)
	}
	f.Add("[profiles.\"a b\"]\nnotes = \"\"\"\nx = 1\n\"\"\"\n")
	f.Add("\ufeff[ profiles . prod ] # h\r\n\tregion = 'r'\t# r\r\n[[profiles.prod.hooks]]\r\nx = {a = 1}\r\n")
	f.Add("# [profiles.prod]\nt = '''\n[profiles.prod]\n'''\n[profiles.\"pro\\u0064\"]\nwebsocket_url = \"a\\nb\" #\n")
	f.Add("a = {b = [{c = [[1], {d.e = {}}]}]}\n")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 || strings.Count(src, "[")+strings.Count(src, "{")+strings.Count(src, ".") > 200 {
			t.Skip() // may be deep enough to make the library slow
		}
		var v map[string]any
		if _, err := toml.Decode(src, &v); err != nil {
			t.Skip()
		}
		checkNestingAgainstTheLibrary(t, src)
	})
}

// tomlGen writes random valid TOML, with strings, comments and keys full
// of what looks like nesting.
type tomlGen struct {
	r *rand.Rand
	n int // keys are unique, so no table is defined twice
}

var tricky = []string{"[", "]", "{", "}", "#", ",", ".", "=", " ", "'", "\"", "\\", "\n", "[[", "a", "é"}

func (g *tomlGen) text() string {
	var b strings.Builder
	for range g.r.IntN(6) {
		b.WriteString(tricky[g.r.IntN(len(tricky))])
	}
	return b.String()
}

func (g *tomlGen) key() string {
	g.n++
	k := fmt.Sprintf("k%d", g.n)
	switch g.r.IntN(3) {
	case 0:
		return k
	case 1:
		return strconv.Quote(k + strings.ReplaceAll(g.text(), "\n", ""))
	default:
		t := strings.NewReplacer("'", "", "\n", "").Replace(g.text())
		return "'" + k + t + "'"
	}
}

func (g *tomlGen) dotted() string {
	parts := []string{g.key()}
	for g.r.IntN(3) == 0 {
		parts = append(parts, g.key())
	}
	return strings.Join(parts, []string{".", " . ", "\t.", ". "}[g.r.IntN(4)])
}

func (g *tomlGen) str() string {
	t := g.text()
	switch g.r.IntN(4) {
	case 0:
		return strconv.Quote(t)
	case 1:
		return "'" + strings.NewReplacer("'", "", "\n", "").Replace(t) + "'"
	case 2:
		return `"""` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t) + `\` + "\n  " + `"""`
	default:
		return "'''" + strings.ReplaceAll(t, "'", "") + "''''"
	}
}

func (g *tomlGen) comment() string {
	if g.r.IntN(3) == 0 {
		return " # " + strings.ReplaceAll(g.text(), "\n", "")
	}
	return ""
}

func (g *tomlGen) value(depth int) string {
	switch k := g.r.IntN(8); {
	case k < 3 || depth > 5:
		return []string{"1", "-2.5e3", "true", "1979-05-27 07:32:00Z", "07:32:00", "inf", "0x_1F"[:1]}[g.r.IntN(7)]
	case k < 5:
		return g.str()
	case k < 7:
		var items []string
		for range g.r.IntN(4) {
			items = append(items, g.value(depth+1))
		}
		sep := []string{", ", ",\n", g.comment() + "\n,", ","}[g.r.IntN(4)]
		end := []string{"", ",", g.comment() + "\n"}[g.r.IntN(3)]
		if len(items) == 0 {
			end = ""
		}
		return "[" + strings.Join(items, sep) + end + "]"
	default:
		var items []string
		for range g.r.IntN(4) {
			items = append(items, g.dotted()+" = "+g.value(depth+1))
		}
		return "{" + strings.Join(items, ", ") + "}"
	}
}

func (g *tomlGen) file() string {
	var b strings.Builder
	for range g.r.IntN(8) {
		switch g.r.IntN(4) {
		case 0:
			fmt.Fprintf(&b, "[%s]%s\n", g.dotted(), g.comment())
		case 1:
			fmt.Fprintf(&b, "[[%s]]%s\n", g.dotted(), g.comment())
		default:
			fmt.Fprintf(&b, "%s = %s%s\n", g.dotted(), g.value(0), g.comment())
		}
	}
	return b.String()
}

// TestRandomValidFilesPassTheNestingCheck checks the scan against the
// library on random files within its grammar.
func TestRandomValidFilesPassTheNestingCheck(t *testing.T) {
	g := &tomlGen{r: rand.New(rand.NewPCG(1, 2))}
	decoded := 0
	for range 3000 {
		src := g.file()
		var v map[string]any
		if _, err := toml.Decode(src, &v); err != nil {
			continue
		}
		decoded++
		checkNestingAgainstTheLibrary(t, src)
	}
	if decoded < 2000 {
		t.Errorf("only %d of 3000 random files decode: the generator writes too few valid ones", decoded)
	}
}

// A file of many unknown keys was checked against every key before it (a
// 128 KB file took half a second, and a 1 MiB one would take many), and
// the refusal named every one of them: it names the first ten and counts
// the rest.
func TestManyUnknownKeysAreCountedNotListed(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "x%d = 1\n", i)
	}
	src := []byte(b.String())
	var f File
	md, err := decodeFile("/c.toml", src, &f)
	if err != nil {
		t.Fatal(err)
	}
	err = unknownSetting(md, src)
	want := "; also unknown: x1, x2, x3, x4, x5, x6, x7, x8, x9, x10 and 4989 more"
	if err == nil || !strings.HasSuffix(err.Error(), want) || !strings.HasPrefix(err.Error(), ", line 1: unknown setting x0") {
		t.Errorf("error = %.300v, want one ending %q", err, want)
	}
}

// longNameShapes are files within maxNesting whose keys' full names (the
// tables they are in, then their own) are long: the library spells out
// the full name of every key it meets, and keeps it, so that a name 20 KB
// long that is the table of 3,000 keys spells out 60 MB, and a 100 KB file of
// them 760 MB (1 MiB would be about 80 GB).
var longNameShapes = []struct {
	name string
	file func(size int) string
}{
	{"a long table header", func(size int) string {
		var b strings.Builder
		b.WriteString("[" + strings.Repeat("a", size/2) + "]\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "x%d=1\n", i)
		}
		return b.String()
	}},
	{"a long inline table key", func(size int) string {
		var b strings.Builder
		b.WriteString("x = {'" + strings.Repeat("a", size/2) + "' = {")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "x%d=1,", i)
		}
		return b.String() + "y=1}}\n"
	}},
	{"a long dotted key", func(size int) string {
		var b strings.Builder
		b.WriteString("x = {" + strings.Repeat("a", size/4) + "." + strings.Repeat("b", size/4) + " = [")
		for b.Len() < size {
			b.WriteString("{},")
		}
		return b.String() + "{}]}\n"
	}},
	{"siblings 31 deep", func(size int) string {
		var b strings.Builder
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "x%d = %s1%s\n", i, strings.Repeat("{a=", 31), strings.Repeat("}", 31))
		}
		return b.String()
	}},
}

// TestAConfigFileOfLongKeyNamesIsRefusedBeforeDecoding: within the depth
// bound, what the library pays for a file grows with the length of its
// keys' full names times how many keys there are; past a budget of them
// the file is refused, naming the line, before the library sees it.
func TestAConfigFileOfLongKeyNamesIsRefusedBeforeDecoding(t *testing.T) {
	for _, shape := range longNameShapes {
		src := []byte("# mine\n" + shape.file(160<<10))
		var err error
		cost := allocated(func() {
			var f File
			_, err = decodeFile("/c.toml", src, &f)
		})
		if err == nil || !strings.HasPrefix(err.Error(), "config file /c.toml, line ") || !strings.Contains(err.Error(), "names of its keys") {
			t.Errorf("%s: error = %.200v, want the file refused for its keys' names", shape.name, err)
		}
		if cost > 1<<20 {
			t.Errorf("%s: refusing it cost %d bytes", shape.name, cost)
		}
	}
}

// TestABigConfigFileOfOrdinaryKeysIsTaken: the budget of key names leaves
// room for a config file as big as socks reads, of ordinary keys.
func TestABigConfigFileOfOrdinaryKeysIsTaken(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < maxConfigSize-512; i++ {
		fmt.Fprintf(&b, "[profiles.production-eu-west-%d]\nregion = 'eu-west-1'\nstage = 'prod'\n", i)
		fmt.Fprintf(&b, "[profiles.production-eu-west-%d.mapping]\ntopics = ['/detail/entityId', '/detail/tenant']\n", i)
	}
	if line, why := nestedTooDeep([]byte(b.String())); line != 0 {
		t.Errorf("a %d-byte file of profiles refused at line %d: %s", b.Len(), line, why)
	}
}

// TestAFileTheLibraryStopsEarlyGetsTheLibrarysError: the library stops
// at the first byte no TOML file may hold (a lone CR, not part of CRLF;
// another control character; a byte that is not UTF-8), wherever it is,
// so nothing past it is decoded. A file nested too deep only past such a
// byte was refused as nested, where the library names the byte.
func TestAFileTheLibraryStopsEarlyGetsTheLibrarysError(t *testing.T) {
	deep := deepShapes[0].file(100)
	for _, src := range []string{
		"region = 'r'\r" + deep,
		"\r" + deep,
		"[profiles.p]\r" + deep,
		"a = {b = 1}\r" + deep,
		"a = 1\r\r\n" + deep,
		"notes = '''x\ry'''\n" + deep,
		"notes = \"\"\"x\ry\"\"\"\n" + deep,
		"region = 'r\x01'\n" + deep,
		"region = 'r\x7f'\n" + deep,
		"region = 'r\xff'\n" + deep,
		"\ufeffregion = 'r'\r" + deep,
	} {
		var v map[string]any
		_, lerr := toml.Decode(src, &v)
		var pe toml.ParseError
		if !errors.As(lerr, &pe) {
			t.Fatalf("%.40q: the library said %v", src, lerr)
		}
		if line, why := nestedTooDeep([]byte(src)); line != 0 {
			t.Errorf("%.40q: refused at line %d (%s)", src, line, why)
		}
		var f File
		_, err := decodeFile("/c.toml", []byte(src), &f)
		want := fmt.Sprintf("config file /c.toml, line %d: %s", pe.Position.Line, strings.TrimSuffix(pe.Message, "."))
		if err == nil || err.Error() != want {
			t.Errorf("%.40q: error = %v, want %q", src, err, want)
		}
	}
	// Nested too deep before such a byte is refused as ever.
	src := deep + "region = 'r'\r\n"
	src = src[:len(src)-2] + "\r"
	if line, why := nestedTooDeep([]byte(src)); line != 1 || why != "deep" {
		t.Errorf("nested too deep before a lone CR: line %d, %q", line, why)
	}
}
