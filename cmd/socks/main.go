// Command socks runs and operates a WebSocket publish/subscribe push system,
// on AWS or on an embedded local stack. Built with build.LambdaTags, it is
// the Lambda function's bootstrap only (lambda.go).
package main

import (
	"os"

	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/lambdafn"
)

// Stamped by the release tool (-ldflags -X).
var (
	version string
	commit  string
	date    string
)

// notTheCLI is what the Lambda-only build (lambda.go) says when it is not
// started as the function.
const notTheCLI = "socks: this binary is the Lambda function only (the bootstrap that socks deploy and the release's Lambda zips hold): Lambda starts it, with no arguments and " + lambdafn.EnvRuntimeAPI + " set. For the commands, use the socks binary (go install github.com/socks-dev/socks/cmd/socks@latest)."

func main() {
	os.Exit(run(build.Resolve(version, commit, date)))
}
