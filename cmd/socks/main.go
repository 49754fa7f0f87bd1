// Command socks runs and operates a WebSocket publish/subscribe push system,
// on AWS or on an embedded local stack.
package main

import (
	"os"

	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/internal/build"
)

// Stamped by the release tool (-ldflags -X).
var (
	version string
	commit  string
	date    string
)

func main() {
	os.Exit(commands.Main(build.Resolve(version, commit, date)))
}
