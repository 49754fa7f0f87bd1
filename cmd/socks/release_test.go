package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReleaseLdflagsStampTheVersion builds socks with the ldflags of every
// build in .goreleaser.yaml, the release's values put in, and reads
// `socks version --json`: the flags must reach main's variables, and the
// version reads as `go install ...@v1.2.0` and docs/json.md give it
// ("v1.2.0"; goreleaser's .Version has no v).
func TestReleaseLdflagsStampTheVersion(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join("..", "..", ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Each build's ldflags: the list items under "ldflags:".
	var builds [][]string
	lines := strings.Split(string(cfg), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "ldflags:" {
			continue
		}
		var flags []string
		for _, item := range lines[i+1:] {
			v, ok := strings.CutPrefix(strings.TrimSpace(item), "- ")
			if !ok {
				break
			}
			flags = append(flags, v)
		}
		builds = append(builds, flags)
	}
	if len(builds) == 0 {
		t.Fatal(".goreleaser.yaml has no ldflags")
	}
	for _, b := range builds[1:] {
		if strings.Join(b, " ") != strings.Join(builds[0], " ") {
			t.Fatalf("the builds' ldflags differ: %q and %q", builds[0], b)
		}
	}
	release := map[string]string{"Version": "1.2.0", "Commit": "3f1c0a9e", "CommitDate": "2026-11-30T12:00:00Z"}
	ldflags := regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`).ReplaceAllStringFunc(strings.Join(builds[0], " "), func(m string) string {
		name := regexp.MustCompile(`\w+`).FindString(m)
		v, ok := release[name]
		if !ok {
			t.Fatalf("ldflags use {{.%s}}, which this test does not fill in", name)
		}
		return v
	})

	bin := filepath.Join(t.TempDir(), "socks")
	build := exec.Command("go", "build", "-trimpath", "-ldflags="+ldflags, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags=%q: %v\n%s", ldflags, err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("socks version --json: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("socks version --json printed %q: %v", out, err)
	}
	want := map[string]string{"version": "v1.2.0", "commit": "3f1c0a9e", "date": "2026-11-30T12:00:00Z"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("socks version --json: %s is %q; want %q (all: %s)", k, got[k], v, out)
		}
	}
	if !strings.HasPrefix(got["go"], "go1.") {
		t.Errorf("socks version --json: go is %q; want the Go version", got["go"])
	}
}
