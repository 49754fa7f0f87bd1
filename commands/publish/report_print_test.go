package publish

import (
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/store"
)

func TestAReportsErrorsCannotDriveTheTerminal(t *testing.T) {
	// A delivery's error quotes what the Management API answered: a
	// gateway's or a proxy's words.
	ios, _, out, errOut := iostreams.Test()
	ios.SetTTY(false, true, true)
	res := Result{ID: "m1", Queued: true, Report: &store.Report{MessageID: "m1", Targets: 1, Delivered: 1, Errors: []string{"PostToConnection: 500 \x1b]52;c;aGk=\x07\u202e"}}}
	if err := printResult(&Options{IO: ios}, res); err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); strings.ContainsAny(got, "\x1b\x07\u202e") || !strings.Contains(got, `500 \x1b]52;c;aGk=\x07\u202e`) {
		t.Errorf("stderr %q: want the error shown escaped", got)
	}
	if !strings.HasPrefix(out.String(), "m1\t") {
		t.Errorf("stdout %q", out)
	}
}
