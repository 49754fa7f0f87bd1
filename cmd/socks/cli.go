//go:build !socks.lambdaonly

package main

import (
	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/internal/build"
)

// run is the command line (which serves as the Lambda function too when
// Lambda starts it: commands.Main).
func run(info build.Info) int {
	return commands.Main(info)
}
