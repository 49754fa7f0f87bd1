package emulatortest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/srcroot"
)

// BuildBootstrap builds the Lambda function's bootstrap as socks deploy
// and the release do (build.LambdaPackage with build.LambdaTags,
// CGO_ENABLED=0, -trimpath) from the source checkout above the working
// directory, into dir, and returns its path. env is added to the go
// tool's environment (GOOS=linux, for a package the RIE runs). The go
// tool is the one that runs the test (GOROOT's), else the one on PATH.
func BuildBootstrap(ctx context.Context, dir string, env ...string) (string, error) {
	root, err := srcroot.Join()
	if err != nil {
		return "", err
	}
	goTool := "go"
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		if p := filepath.Join(goroot, "bin", "go"); exists(p) {
			goTool = p
		}
	}
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-tags", build.LambdaTags, "-o", bin, build.LambdaPackage)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags %s %s: %v\n%s", build.LambdaTags, build.LambdaPackage, err, out)
	}
	return bin, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
