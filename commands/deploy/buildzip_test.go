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
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/srcroot"
)

// TestBuildZipIsAReproducibleLambdaPackage: the package deploy builds from
// the checkout is what provided.al2023 runs (one file, bootstrap,
// executable, a Linux binary of the asked architecture), and two builds of
// the same tree give the same bytes, which deploy compares with the
// function's CodeSha256 to skip an update that changes nothing, whatever
// microarchitecture level the user's environment asks of the go tool.
func TestBuildZipIsAReproducibleLambdaPackage(t *testing.T) {
	src := srcroot.Find("")
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

// TestTheFunctionBuildDropsGOFLAGSSetWithGoEnvW: build flags and
// experiments the developer set with `go env -w` (kept in the go env
// file, not the environment) do not reach the function's build either,
// as those in the environment do not: an empty GOFLAGS or GOEXPERIMENT in
// the environment leaves the go tool to read the file's. The module-mode
// flags and the file's other settings stay.
func TestTheFunctionBuildDropsGOFLAGSSetWithGoEnvW(t *testing.T) {
	for _, tc := range []struct{ name, goflags, want string }{
		{"module flags among them are kept", "-race -tags=socks_no_such_tag -mod=mod", "-mod=mod"},
		{"with none of them, none is left", "-race -cover", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			goenv := filepath.Join(t.TempDir(), "go.env")
			file := "GOFLAGS=" + tc.goflags + "\nGOEXPERIMENT=fieldtrack\nGOPRIVATE=example.com/private\n"
			if err := os.WriteFile(goenv, []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("GOENV", goenv)
			t.Setenv("GOFLAGS", "")
			t.Setenv("GOEXPERIMENT", "")
			t.Setenv("GOPRIVATE", "")
			env, err := functionBuildEnv(t.Context(), ".", runtime.GOARCH, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "env", "GOFLAGS", "GOEXPERIMENT", "GOPRIVATE")
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(out), "\n")
			if len(lines) < 3 {
				t.Fatalf("go env printed %q", out)
			}
			if lines[0] != tc.want {
				t.Errorf("the function is built with GOFLAGS %q, the go env file having %q; want %q", lines[0], tc.goflags, tc.want)
			}
			if lines[1] != "" {
				t.Errorf("the function is built with GOEXPERIMENT %q from the go env file; want none", lines[1])
			}
			if lines[2] != "example.com/private" {
				t.Errorf("the function is built with GOPRIVATE %q; want the go env file's example.com/private kept", lines[2])
			}
		})
	}
}
