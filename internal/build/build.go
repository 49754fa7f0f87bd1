// Package build describes the running binary: version, commit and build date
// as stamped by the release tool, or read from the Go build info otherwise.
package build

import (
	"runtime/debug"
	"strings"
)

// Info is the build description.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	Go      string `json:"go"`
}

// Resolve fills what the linker did not stamp from debug.ReadBuildInfo.
func Resolve(version, commit, date string) Info {
	// What a release tool stamps when it could not read the git state
	// (goreleaser: "none" and the zero time) is no commit and no date.
	if commit == "none" || commit == "unknown" {
		commit = ""
	}
	if strings.HasPrefix(date, "0001-01-01") {
		date = ""
	}
	i := Info{Version: version, Commit: commit, Date: date}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		i.Go = bi.GoVersion
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.Date == "" {
					i.Date = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" && i.Commit != "" && len(i.Commit) < 48 {
					i.Commit += "-dirty"
				}
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	return i
}

// How the Lambda function's bootstrap is built, the same for `socks
// deploy`, the release's Lambda zips (.goreleaser.yaml), the benchmarks
// (scripts/bench) and the tests that run it: LambdaPackage with
// LambdaTags, for linux, CGO_ENABLED=0 -trimpath. Under socks.lambdaonly
// the binary is the function only: no command line, no local backend
// (SQLite), none of the control plane's clients (deploy's IAM, Lambda,
// API Gateway v2, CloudWatch Logs; the producers' SNS and EventBridge).
// lambda.norpc leaves out aws-lambda-go's RPC mode, which provided.al2023
// does not use.
const (
	LambdaPackage = "./cmd/socks"
	LambdaTags    = "lambda.norpc,socks.lambdaonly"
)
