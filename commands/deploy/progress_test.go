package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
)

func TestDeployWaitsSpinOnATerminalOnly(t *testing.T) {
	// deploy showed nothing during its long waits (a table becoming
	// active, the IAM role retry) while provision showed a spinner.
	step := awsops.DeployStep{Kind: "function", Name: "prod-socks", Action: awsops.ActionCreate}
	stderr := func(tty, jsonOut bool, until func(string) bool) string {
		t.Helper()
		ios, _, _, _ := iostreams.Test()
		ios.SetTTY(false, tty, tty)
		ios.SetNoColor(true)
		errOut := &lockedbuf.Buffer{}
		ios.ErrOut = errOut
		show, stop := progressPrinter(ios, false, jsonOut)
		show(step, false)
		if until != nil {
			for deadline := time.Now().Add(time.Minute); !until(errOut.String()); {
				if time.Now().After(deadline) {
					stop()
					t.Fatalf("no spinner while creating the function; stderr %q", errOut.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		show(step, true)
		stop()
		return errOut.String()
	}

	got := stderr(true, false, func(s string) bool { return strings.Contains(s, " creating function prod-socks (") })
	if !strings.Contains(got, "~ creating function prod-socks\n") || !strings.Contains(got, "\r\x1b[K✓ created function prod-socks\n") {
		t.Errorf("terminal stderr %q: want the step's line, the spinner, then the done line over it", got)
	}

	const plain = "~ creating function prod-socks\n✓ created function prod-socks\n"
	if got := stderr(false, false, nil); got != plain {
		t.Errorf("piped stderr %q, want %q (no spinner)", got, plain)
	}
	if got := stderr(true, true, nil); got != plain {
		t.Errorf("--json stderr on a terminal %q, want %q (no spinner)", got, plain)
	}
}

// TestADryRunShowsItsPlanOnce: `deploy --dry-run` printed each change
// twice on a terminal: "~ would create X" (and its drift) as progress on
// stderr, then "would create X" (and its drift) as the plan on stdout.
// The plan is the answer; stderr keeps no line per step.
func TestADryRunShowsItsPlanOnce(t *testing.T) {
	for _, tty := range []bool{true, false} {
		ios, _, _, _ := iostreams.Test()
		ios.SetTTY(false, tty, tty)
		ios.SetNoColor(true)
		errOut := &lockedbuf.Buffer{}
		ios.ErrOut = errOut
		show, stop := progressPrinter(ios, true, false)
		show(awsops.DeployStep{Kind: "table", Name: "prod-connections", Action: awsops.ActionCreate, Drift: []string{"table prod-connections is missing"}}, false)
		show(awsops.DeployStep{Kind: "role", Name: "prod-socks-function", Action: awsops.ActionNone}, false)
		stop()
		if got := errOut.String(); got != "" {
			t.Errorf("terminal %v: dry-run stderr %q; want nothing (the plan is on stdout)", tty, got)
		}
	}
}

func TestADriftQuotingAWSCannotDriveTheTerminal(t *testing.T) {
	// A drift quotes what AWS holds (a policy, a tag's value), which
	// anyone with write access to the account chose.
	ios, _, _, _ := iostreams.Test()
	ios.SetTTY(false, true, true)
	ios.SetNoColor(true)
	errOut := &lockedbuf.Buffer{}
	ios.ErrOut = errOut
	show, stop := progressPrinter(ios, false, true)
	show(awsops.DeployStep{Kind: "role", Name: "prod-socks\u202e", Action: awsops.ActionUpdate, Drift: []string{"tag owner is \x1b]52;c;aGk=\x07; want socks"}}, false)
	stop()
	got := errOut.String()
	if strings.ContainsAny(got, "\x1b\x07\u202e") || !strings.Contains(got, `tag owner is \x1b]52;c;aGk=\x07; want socks`) || !strings.Contains(got, `prod-socks\u202e`) {
		t.Errorf("stderr on a terminal %q: want the drift and name shown escaped", got)
	}
}

// TestDeployWithJSONOnAColourTerminalWritesPlainStepLines: with --json
// the per-step lines on stderr were coloured on a terminal (lipgloss),
// though with --json every command writes plain lines per step, as when
// piped, so that a terminal shows no escape code (docs/json.md). Without
// --json a colour terminal still gets its colours.
func TestDeployWithJSONOnAColourTerminalWritesPlainStepLines(t *testing.T) {
	steps := []struct {
		step awsops.DeployStep
		done bool
	}{
		{awsops.DeployStep{Kind: "table", Name: "prod-connections", Action: awsops.ActionNone}, false},
		{awsops.DeployStep{Kind: "role", Name: "prod-socks-function", Action: awsops.ActionUpdate, Drift: []string{"tag owner is alice; want socks"}}, false},
		{awsops.DeployStep{Kind: "role", Name: "prod-socks-function", Action: awsops.ActionUpdate}, true},
		{awsops.DeployStep{Kind: "rule", Name: "prod-socks-old", Action: awsops.ActionDelete}, true},
	}
	stderr := func(tty, jsonOut bool) string {
		t.Helper()
		ios, _, _, _ := iostreams.Test()
		ios.SetTTY(false, tty, tty) // colour on: NO_COLOR is not set
		errOut := &lockedbuf.Buffer{}
		ios.ErrOut = errOut
		show, stop := progressPrinter(ios, false, jsonOut)
		for _, s := range steps {
			show(s.step, s.done)
		}
		stop()
		return errOut.String()
	}
	const plain = "= table prod-connections is in place\n" +
		"~ updating role prod-socks-function\n" +
		"    drift: tag owner is alice; want socks\n" +
		"✓ updated role prod-socks-function\n" +
		"- deleted rule prod-socks-old\n"
	if got := stderr(false, true); got != plain {
		t.Fatalf("--json piped: stderr %q, want %q", got, plain)
	}
	if got := stderr(true, true); got != plain {
		t.Errorf("--json on a colour terminal: stderr %q, want it as piped, %q", got, plain)
	}
	if got := stderr(true, false); !strings.Contains(got, "\x1b[") {
		t.Errorf("without --json on a colour terminal: stderr %q, want its colours", got)
	}
}
