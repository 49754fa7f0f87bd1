package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestMakefileFuzzesEveryFuzzTarget: `make fuzz` lists its targets by
// hand, and FuzzParseMessage, FuzzDispatch and FuzzSaveProfile were
// written without being added, so they never ran there. Every `func
// FuzzX(f *testing.F)` in the repository must be named by one line of the
// fuzz target, with its own package, and each line's -fuzz pattern must
// pick exactly one target of that package (go test refuses to fuzz when a
// pattern matches two, as "FuzzSaveProfile" matches FuzzSaveProfileKeepsBytes).
func TestMakefileFuzzesEveryFuzzTarget(t *testing.T) {
	root := filepath.Join("..", "..")
	// targets: package dir ("./config/") -> fuzz target names.
	targets := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := "./" + filepath.ToSlash(rel) + "/"
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") || !takesTestingF(fn) {
				continue
			}
			targets[pkg] = append(targets[pkg], fn.Name.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) == 0 {
		t.Fatal("found no fuzz targets: is the walk at the repository's root?")
	}

	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	recipe := fuzzRecipe(t, string(makefile))
	line := regexp.MustCompile(`-fuzz\s+'?([^'\s]+)'?\s.*\s(\./\S*/)\s*$`)
	fuzzed := map[string]bool{} // "./pkg/ FuzzX"
	for _, l := range recipe {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("fuzz recipe line %q has no -fuzz pattern and ./package/", l)
			continue
		}
		// make turns $$ into $.
		pattern, pkg := strings.ReplaceAll(m[1], "$$", "$"), m[2]
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Errorf("fuzz recipe line %q: -fuzz %q is not a regexp: %v", l, pattern, err)
			continue
		}
		var matched []string
		for _, name := range targets[pkg] {
			if re.MatchString(name) {
				matched = append(matched, name)
			}
		}
		switch len(matched) {
		case 0:
			t.Errorf("fuzz recipe line %q names no fuzz target of %s (it has %v)", l, pkg, targets[pkg])
		case 1:
			fuzzed[pkg+" "+matched[0]] = true
		default:
			t.Errorf("fuzz recipe line %q: -fuzz %q matches %v in %s; go test fuzzes only one (anchor it: '^Name$$$$')", l, pattern, matched, pkg)
		}
	}
	var missing []string
	for pkg, names := range targets {
		for _, name := range names {
			if !fuzzed[pkg+" "+name] {
				missing = append(missing, name+" in "+pkg)
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("the Makefile's fuzz target does not run %s: add a line for it", m)
	}
}

// takesTestingF reports whether fn's one parameter is *testing.F.
func takesTestingF(fn *ast.FuncDecl) bool {
	params := fn.Type.Params.List
	if len(params) != 1 || len(params[0].Names) > 1 {
		return false
	}
	star, ok := params[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "testing" && sel.Sel.Name == "F"
}

// fuzzRecipe returns the recipe lines of the Makefile's fuzz target.
func fuzzRecipe(t *testing.T, makefile string) []string {
	t.Helper()
	var recipe []string
	in := false
	for _, l := range strings.Split(makefile, "\n") {
		switch {
		case l == "fuzz:":
			in = true
		case in && strings.HasPrefix(l, "\t"):
			if s := strings.TrimSpace(l); s != "" {
				recipe = append(recipe, s)
			}
		case in:
			return recipe
		}
	}
	if !in {
		t.Fatal("the Makefile has no fuzz target")
	}
	return recipe
}
