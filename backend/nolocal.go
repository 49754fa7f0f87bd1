//go:build socks.lambdaonly

package backend

import (
	"context"
	"errors"

	"github.com/socks-dev/socks/config"
)

// The Lambda-only build (the function's bootstrap: BuildTags) has no
// local backend: the embedded database (SQLite) is no part of the
// function, which runs on AWS's. Open refuses the local backend, so a
// Backend's DB is always nil here, and the methods of localDB, which the
// shared code calls only on a DB that Open opened, answer errNoLocal.

// errNoLocal is the Lambda-only build's answer for the local backend.
var errNoLocal = errors.New("the local backend is not in this build of socks (the Lambda function only): use the socks command for it")

// localDB stands for the local backend's database (local.go), which this
// build does not link.
type localDB struct{}

func (*localDB) GetMeta(context.Context, string) (string, bool, error) {
	return "", false, errNoLocal
}

func (*localDB) WatchReplaced(context.Context) error { return errNoLocal }

func (*localDB) Queue() noLocalQueue { return noLocalQueue{} }

func (*localDB) Close() error { return nil }

type noLocalQueue struct{}

func (noLocalQueue) GiveBackInFlight(context.Context) (int, error) { return 0, errNoLocal }

func openLocal(context.Context, config.Config, Options) (*Backend, error) {
	return nil, errNoLocal
}
