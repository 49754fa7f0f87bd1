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
	"github.com/socks-dev/socks/internal/jsondoc"
	"github.com/socks-dev/socks/store"
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

// moreAll is a queue whose redrive and purge of all do n dead letters and
// stop with more left (store.ErrDeadLettersUnread), as SQS's do past the
// dead letters a read takes (a purge, past its reads).
type moreAll struct {
	store.Queue
	n int
}

func (m moreAll) err() error {
	return fmt.Errorf("dead letters: did %d of them, and there are more: run it again: %w", m.n, store.ErrDeadLettersUnread)
}
func (m moreAll) RedriveEach(context.Context, []string, func(store.DeadLetter)) (int, error) {
	return m.n, m.err()
}
func (m moreAll) PurgeEach(_ context.Context, _ []string, purged func(int)) (int, error) {
	purged(m.n)
	return m.n, m.err()
}

// TestMoreIsAsDocumented: the --json of a redrive or purge of all that
// stopped with more left ({"redriven":2,"more":true}) is as docs/json.md
// shows it (jsondoc), exit 1. The e2e test of the page runs the local
// backend, which never prints "more".
func TestMoreIsAsDocumented(t *testing.T) {
	q, _ := deadQueue(t, "a")
	mq := moreAll{q, 2}
	for _, c := range []struct {
		section string
		run     func(*RedriveOptions, *PurgeOptions) error
	}{
		{"socks dlq redrive --all --json", func(r *RedriveOptions, _ *PurgeOptions) error { return redriveRun(t.Context(), r) }},
		{"socks dlq purge --all --yes --json", func(_ *RedriveOptions, p *PurgeOptions) error { return purgeRun(t.Context(), p) }},
	} {
		ios, _, out, _ := streams()
		err := c.run(
			&RedriveOptions{IO: ios, Queue: qf(mq), Now: time.Now, selection: selection{All: true}, JSON: true},
			&PurgeOptions{IO: ios, Queue: qf(mq), Now: time.Now, selection: selection{All: true}, Yes: true, JSON: true})
		if !errors.Is(err, store.ErrDeadLettersUnread) {
			t.Errorf("%s: %v; want the error saying there are more (exit 1)", c.section, err)
		}
		d, ferr := jsondoc.Find(c.section)
		if ferr != nil {
			t.Fatal(ferr)
		}
		var got map[string]any
		if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil || got["more"] != true {
			t.Errorf("%s: stdout %q; want \"more\": true", c.section, out)
		}
		for _, p := range d.Check(out.String()) {
			t.Errorf("%s: %s", c.section, p)
		}
	}
}
