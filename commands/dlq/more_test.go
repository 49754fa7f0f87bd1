package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
)

// moreQueue returns an SQS queue on ElasticMQ whose reads of the dead
// letters take 2 of them (as SQS's take 10,000), with n dead letters.
func moreQueue(t *testing.T, n int) (*awsops.SQSQueue, []string) {
	t.Helper()
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"topics":["t"],"body":%d}`, i)
	}
	q, _, ids, _ := sqsDeadLetters(t, awsops.SQSOptions{DeadLetterWalk: 2}, bodies...)
	return q, ids
}

// TestAListPastWhatAReadTakesSaysThereAreMore runs on ElasticMQ, with
// reads of 2 dead letters for SQS's 10,000: `dlq list` of 3 lists 2 and
// says on stderr that there are more and to run it again once some are
// gone (--json too: its array has no place for it), exit 0. Before, it
// listed the first 10,000 and said nothing.
func TestAListPastWhatAReadTakesSaysThereAreMore(t *testing.T) {
	q, ids := moreQueue(t, 3)
	for _, asJSON := range []bool{false, true} {
		ios, _, out, errOut := streams()
		if err := listRun(t.Context(), &ListOptions{IO: ios, Queue: qf(q), Now: time.Now, JSON: asJSON}); err != nil {
			t.Fatalf("--json %v: %v", asJSON, err)
		}
		listed := 0
		for _, id := range ids {
			if strings.Contains(out.String(), id) {
				listed++
			}
		}
		note := errOut.String()
		if listed != 2 || !strings.Contains(note, "listed the first 2 dead letters read, and there are more") || !strings.Contains(note, "run it again") {
			t.Errorf("--json %v: listed %d, stderr %q; want 2 listed and a note that there are more, saying to run it again", asJSON, listed, note)
		}
	}
}

// TestAnAllPastWhatAReadTakesIsHonest runs on ElasticMQ, with reads of 2
// dead letters for SQS's 10,000. `dlq purge --all` of 5 reads again
// until none are left: it purges all 5 (exit 0). `dlq redrive --all` of
// 3 reads once (a second read could take back one it has just redriven
// that failed again): it prints that it redrove 2 ("more": true in
// --json) and exits 1 saying there are more and to run it again. Before,
// both stopped at the first 10,000 and exited 0 ("purged 10000").
func TestAnAllPastWhatAReadTakesIsHonest(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		q, _ := moreQueue(t, 5)
		ios, _, out, errOut := streams()
		err := purgeRun(t.Context(), &PurgeOptions{IO: ios, Queue: qf(q), Now: time.Now, selection: selection{All: true}, Yes: true, JSON: asJSON})
		want := "purged 5 dead letters\n"
		if asJSON {
			want = `{"purged":5}` + "\n"
		}
		if err != nil || out.String() != want {
			t.Errorf("purge --all --json %v of 5 = %v, stdout %q, stderr %q; want %q, exit 0", asJSON, err, out, errOut, want)
		}

		q, _ = moreQueue(t, 3)
		ios, _, out, _ = streams()
		err = redriveRun(t.Context(), &RedriveOptions{IO: ios, Queue: qf(q), Now: time.Now, selection: selection{All: true}, JSON: asJSON})
		var exit *cmdutil.ExitCodeError
		if err == nil || (errors.As(err, &exit) && exit.Code != cmdutil.ExitError) || !strings.Contains(err.Error(), "there are more") || !strings.Contains(err.Error(), "run it again") {
			t.Errorf("redrive --all --json %v of 3 = %v; want exit 1 saying there are more and to run it again", asJSON, err)
		}
		if asJSON {
			var got map[string]any
			if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil || got["redriven"] != 2.0 || got["more"] != true {
				t.Errorf("redrive --all --json of 3: stdout %q; want {\"redriven\":2,\"more\":true}", out)
			}
		} else if out.String() != "redrove 2 dead letters onto the queue\n" {
			t.Errorf("redrive --all of 3: stdout %q; want that it redrove 2", out)
		}
	}
}

// TestAMistypedIDAmongExactlyWhatAReadTakesIsNotFound runs on ElasticMQ,
// with reads of 2 dead letters for SQS's 10,000: `dlq show` of an ID that
// is none of exactly 2 exits 3, not found. Before, a read that reached
// its bound took it that there were more, and said the ID was "not among
// the first 10,000 read" (exit 1).
func TestAMistypedIDAmongExactlyWhatAReadTakesIsNotFound(t *testing.T) {
	q, _ := moreQueue(t, 2)
	ios, _, _, _ := streams()
	wantExit(t, showRun(context.Background(), &ShowOptions{IO: ios, Queue: qf(q), Now: time.Now, ID: "q-mistyped"}), cmdutil.ExitNotFound)
}
