package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestBuildZipIsAReproducibleLambdaPackage: the package deploy builds from
// the checkout is what provided.al2023 runs (one file, bootstrap,
// executable, a Linux binary of the asked architecture), and two builds of
// the same tree give the same bytes, which deploy compares with the
// function's CodeSha256 to skip an update that changes nothing, whatever
// microarchitecture level the user's environment asks of the go tool.
func TestBuildZipIsAReproducibleLambdaPackage(t *testing.T) {
	src := sourceCheckout("")
	if src == "" {
		t.Fatal("no socks source checkout above the test's directory")
	}
	// The host's architecture: its packages are in the build cache already.
	arch := runtime.GOARCH
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if machine == elf.EM_NONE {
		t.Fatalf("Lambda has no %s architecture; run this test on amd64 or arm64", arch)
	}
	ctx := context.Background()
	// The module-mode flags pass (a machine may need -buildvcs=false to
	// build at all); both builds have the same ones.
	const moduleFlags = "-buildvcs=false -mod=readonly -modcacherw"
	t.Setenv("GOFLAGS", moduleFlags)
	t.Setenv("GOEXPERIMENT", "")
	first, err := BuildZip(ctx, src, arch)
	if err != nil {
		t.Fatal(err)
	}
	// The second with the user's own microarchitecture level set, as
	// for their other builds: the function runs on Lambda's machines,
	// and gets the release's (the go tool's default) level. And with
	// GOFLAGS a developer keeps for their tests (-race, -cover, build
	// tags, their own ldflags): the deployed binary is the release's,
	// not a race-detector or coverage build (-race with CGO_ENABLED=0
	// failed the deploy outright).
	t.Setenv("GOAMD64", "v3")
	t.Setenv("GOARM64", "v9.0")
	t.Setenv("GOFLAGS", moduleFlags+" -race -cover -tags=socks_no_such_tag -ldflags=-X=main.version=mine -gcflags=all=-N")
	second, err := BuildZip(ctx, src, arch)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("two builds of the same tree, the second with GOAMD64=v3, GOARM64=v9.0 and GOFLAGS=-race -cover -tags=... set, gave different packages")
	}

	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		t.Fatalf("package holds %q; want only bootstrap", names)
	}
	f := zr.File[0]
	if mode := f.Mode(); !mode.IsRegular() || mode.Perm() != 0o755 {
		t.Errorf("bootstrap's mode is %v; want -rwxr-xr-x", mode)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := elf.NewFile(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF binary: %v", err)
	}
	if bin.Machine != machine || bin.Type != elf.ET_EXEC {
		t.Errorf("bootstrap is %v %v; want an executable for %v (--arch %s)", bin.Type, bin.Machine, machine, arch)
	}
}

// TestTheFunctionBuildDropsGOFLAGSSetWithGoEnvW: build flags the
// developer set with `go env -w GOFLAGS=...` (kept in the go env file,
// not the environment) do not reach the function's build either, as
// those in the environment do not: an empty GOFLAGS in the environment
// leaves the go tool to read the file's. The module-mode ones stay.
func TestTheFunctionBuildDropsGOFLAGSSetWithGoEnvW(t *testing.T) {
	goenv := filepath.Join(t.TempDir(), "go.env")
	if err := os.WriteFile(goenv, []byte("GOFLAGS=-race -tags=socks_no_such_tag -mod=mod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOENV", goenv)
	t.Setenv("GOFLAGS", "")
	env, err := functionBuildEnv(t.Context(), ".", runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "env", "GOFLAGS")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	flags := strings.Fields(string(out))
	for _, f := range flags {
		if strings.HasPrefix(f, "-race") || strings.HasPrefix(f, "-tags") {
			t.Errorf("the function is built with GOFLAGS %q from the go env file; want no %s", out, f)
		}
	}
	if !slices.Contains(flags, "-mod=mod") {
		t.Errorf("the function is built with GOFLAGS %q; want the go env file's -mod=mod kept", out)
	}
}
