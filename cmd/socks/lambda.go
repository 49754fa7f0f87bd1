//go:build socks.lambdaonly

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/lambdafn"
)

// run serves the Lambda Runtime API, as commands.Main does when Lambda
// starts the whole socks binary; started otherwise (with arguments, or
// outside Lambda) it says what it is and exits 2, a usage error.
func run(info build.Info) int {
	if !lambdafn.Detect(os.Getenv, os.Args[1:]) {
		fmt.Fprintln(os.Stderr, notTheCLI)
		return 2
	}
	return lambdafn.Main(context.Background(), os.Getenv, info, os.Stderr)
}
