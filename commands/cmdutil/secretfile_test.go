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

// `--id-file -` on a terminal read a typed line to maxIDFileBytes+1
// bytes and took them all, where a file or a pipe of more than
// maxIDFileBytes is refused: a paste over the bound became a chatter ID
// cut short. A typed line is bounded as a file is.
func TestATypedSecretOverTheBoundIsRefusedAsAFileIs(t *testing.T) {
	ios, in, _, _ := iostreams.Test()
	ios.SetTTY(true, false, false)
	in.WriteString(strings.Repeat("x", 64) + "\n")
	_, err := ReadSecretFile(t.Context(), ios, "id-file", "-", "", 64)
	var fe *FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--id-file - holds more than 64 bytes") || strings.Contains(err.Error(), "xx") {
		t.Errorf("a typed line of 65 bytes = %v; want a usage error saying it holds more than 64 bytes, without it", err)
	}
	ios, in, _, _ = iostreams.Test()
	ios.SetTTY(true, false, false)
	in.WriteString(strings.Repeat("x", 63) + "\n")
	if got, err := ReadSecretFile(t.Context(), ios, "id-file", "-", "", 64); err != nil || got != strings.Repeat("x", 63)+"\n" {
		t.Errorf("a typed line of 64 bytes = %q, %v; want it as typed", got, err)
	}
}

// brokenReader yields b, then fails with errBroken (a terminal hung up).
type brokenReader struct{ b []byte }

var errBroken = errors.New("input/output error")

func (r *brokenReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errBroken
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// A typed line cut short by a read error (the terminal hung up) was
// taken as the whole line, with no error: half a chatter ID was
// presented as one. The error is returned now, and the line is not.
func TestATypedLineCutByAReadErrorIsNoLine(t *testing.T) {
	line, err := readLineCtx(t.Context(), &brokenReader{b: []byte("sc_abc")}, 64)
	if line != "" || !errors.Is(err, errBroken) {
		t.Errorf("readLineCtx = %q, %v; want no line and the read's error", line, err)
	}
	ios, _, _, _ := iostreams.Test()
	ios.SetTTY(true, false, false)
	ios.In = &brokenReader{b: []byte("sc_abc")}
	got, err := ReadSecretFile(t.Context(), ios, "id-file", "-", "", 64)
	var fe *FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--id-file: cannot read -: input/output error") || strings.Contains(err.Error(), "sc_abc") {
		t.Errorf("ReadSecretFile = %q, %v; want a usage error saying why it cannot read -", got, err)
	}
}
