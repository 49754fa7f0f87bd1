package cmdutil

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
)

// `--id-file DIR` said "cannot read DIR" and not why, where a missing
// file says "no such file or directory": a directory given by mistake
// (a path missing its file name) was left for the user to guess.
func TestASecretFileThatCannotBeReadSaysWhy(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	dir := t.TempDir()
	_, err := ReadSecretFile(context.Background(), ios, "id-file", dir, "", 64)
	var fe *FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--id-file: cannot read "+dir+": is a directory") {
		t.Errorf("error = %v; want a usage error saying %s is a directory", err, dir)
	}
}
