package cmdutil

import (
	"context"
	"errors"
	"os"
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

// A file saved by Notepad starts with a UTF-8 byte order mark, and one
// written by Windows PowerShell 5 (`$id > ids.txt`) is UTF-16: the mark
// was taken as part of the first chatter ID (listen presented it and was
// refused; chatter revoke said line 1 was no chatter ID), and UTF-16 was
// read as bytes.
func TestASecretFileWithAByteOrderMark(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := ReadSecretFile(context.Background(), ios, "id-file", write("utf8.txt", []byte("\xef\xbb\xbfsc_abc\r\n")), "", 64)
	if err != nil || got != "sc_abc\r\n" {
		t.Errorf("UTF-8 with a mark: %q, %v; want %q", got, err, "sc_abc\r\n")
	}
	for _, bom := range []string{"\xff\xfe", "\xfe\xff"} {
		_, err := ReadSecretFile(context.Background(), ios, "id-file", write("utf16.txt", []byte(bom+"s\x00c\x00")), "", 64)
		var fe *FlagError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "UTF-16") || !strings.Contains(err.Error(), "save it as UTF-8") {
			t.Errorf("UTF-16 (% x): error = %v; want a usage error saying to save it as UTF-8", bom, err)
		}
	}
}
