package cmdutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/socks-dev/socks/internal/infile"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
)

// ReadSecretFile reads a secret given by a file flag (`--id-file FILE`), so
// that it stays out of argv (the process list, shell history). path "-" is
// standard input: on a terminal it writes prompt on stderr and takes one
// line. ctx's end stops any wait (for that line, for a pipe's bytes, for a
// FIFO's writer) with ctx's error. It reads at most max bytes; more is a
// FlagError, as is a file it cannot read. Errors name flag and path, never
// the content.
func ReadSecretFile(ctx context.Context, ios *iostreams.IOStreams, flag, path, prompt string, max int) (string, error) {
	var b []byte
	var err error
	typed := path == "-" && ios.IsStdinTTY()
	switch {
	case typed:
		// A typed line is bounded and refused as a file is.
		fmt.Fprint(ios.ErrOut, prompt)
		var line string
		line, err = readLineCtx(ctx, ios.In, max)
		b = []byte(line)
	case path == "-":
		b, err = infile.Read(ctx, ios.In, int64(max))
	default:
		// A FIFO (`<(pass show id)`) is read as a file is; the wait for
		// its writer, as for a pipe's bytes, ends with ctx.
		b, err = infile.ReadStream(ctx, path, int64(max))
	}
	if errors.Is(err, context.Canceled) {
		return "", err // interrupted: Main says so
	}
	if err != nil {
		// Why, never what was read (no error of a read holds it).
		if pe, ok := errors.AsType[*os.PathError](err); ok {
			err = pe.Err
		} else if ne, ok := errors.AsType[*infile.NotRegularError](err); ok {
			err = errors.New("is " + ne.What)
		}
		return "", FlagErrorf("--%s: cannot read %s: %v", flag, path, err)
	}
	if len(b) > max {
		return "", FlagErrorf("--%s %s holds more than %d bytes", flag, path, max)
	}
	if typed {
		return string(b), nil // no file: no mark of an editor's
	}
	// Windows editors and shells mark the encoding at the start: Notepad
	// UTF-8's mark is no part of the first secret, and Windows
	// PowerShell's `>` writes UTF-16, whose bytes are no secret at all.
	if b, err = text.UTF8File(b); err != nil {
		return "", FlagErrorf("--%s %s: %v", flag, path, err)
	}
	return string(b), nil
}

// readLineCtx reads one line from in: through its '\n', or what there is
// when in ends first, or, for a line longer than that, its first max+1
// bytes (so that the caller sees it is over max; it is never read whole).
// A read error returns no line but the error (a line cut short is not the
// line typed), and ctx's end ctx's error; the read itself goes on until
// the process ends.
func readLineCtx(ctx context.Context, in io.Reader, max int) (string, error) {
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(io.LimitReader(in, int64(max)+1)).ReadString('\n')
		if err != nil && err != io.EOF {
			line = ""
		} else {
			err = nil
		}
		got <- result{line, err}
	}()
	select {
	case r := <-got:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// lineSpace is what a line of a file or a terminal, or a variable set
// from one, legitimately has around a value: ASCII spaces and tabs, and
// the line's end (CR, LF).
const lineSpace = " \t\r\n"

// TrimChatterID takes off id's ends what a line holds around a chatter ID
// (lineSpace), and nothing else: a no-break space, U+0085, a vertical tab
// or a form feed there stays, for CheckChatterIDAlphabet to refuse, as
// publish refuses them around a body. (strings.TrimSpace took them off,
// and an ID pasted with one was taken.) listen and chatter revoke share
// it.
func TrimChatterID(id string) string { return strings.Trim(id, lineSpace) }

// CheckChatterIDAlphabet refuses, as a usage error, a chatter ID given
// from where (`--id value 2 of 3`, `$SOCKS_CHATTER_ID`) that holds what
// no issued ID does (pubsub.InChatterIDAlphabet): a paste's space, an
// escape sequence, a letter beyond ASCII. The refusal names the first
// such character by its code point, and where it is
// (pubsub.ChatterIDStray); the value is never echoed: it may be a
// mistyped secret. listen and chatter revoke share it.
func CheckChatterIDAlphabet(id, where string) error {
	stray := pubsub.ChatterIDStray(id)
	if stray == "" {
		return nil
	}
	return FlagErrorf("the chatter ID from %s has %s, which no chatter ID holds: "+
		"one, as `socks chatter issue` prints it, holds only letters, digits, '-' and '_'; it is not shown here", where, stray)
}
