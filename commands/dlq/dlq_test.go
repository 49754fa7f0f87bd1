package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/store"
)

var now = time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)

// deadQueue returns a local queue holding one dead letter per body, with
// reason "reason: BODY", and their IDs in order.
func deadQueue(t *testing.T, bodies ...string) (store.Queue, []string) {
	t.Helper()
	db, err := local.Open(context.Background(), filepath.Join(t.TempDir(), "socks.db"), local.Options{Now: func() time.Time { return now.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q := db.Queue()
	ctx := context.Background()
	var ids []string
	for _, b := range bodies {
		if _, err := q.Send(ctx, []byte(b)); err != nil {
			t.Fatal(err)
		}
		msgs, err := q.Receive(ctx, 1, time.Minute, time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receive: %v %v", msgs, err)
		}
		if err := q.DeadLetter(ctx, msgs[0], "reason: "+b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msgs[0].ID)
	}
	return q, ids
}

func streams() (*iostreams.IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	return iostreams.Test()
}

func qf(q store.Queue) func(context.Context) (store.Queue, error) {
	return func(context.Context) (store.Queue, error) { return q, nil }
}

func wantExit(t *testing.T, err error, code int) {
	t.Helper()
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != code {
		t.Errorf("got %v; want exit %d", err, code)
	}
}

func TestList(t *testing.T) {
	q, ids := deadQueue(t, `{"topics":["t"],"body":1}`, "not json")
	ios, _, out, _ := streams()
	opts := &ListOptions{IO: ios, Queue: qf(q), Now: func() time.Time { return now }}
	if err := listRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	// Each is kept 14 days after it failed, as on SQS.
	want := "ID\tFAILED\tEXPIRES\tRECEIVES\tREASON\n" +
		ids[0] + "\t2030-06-01T11:00:00Z\t2030-06-15T11:00:00Z\t1\treason: {\"topics\":[\"t\"],\"body\":1}\n" +
		ids[1] + "\t2030-06-01T11:00:00Z\t2030-06-15T11:00:00Z\t1\treason: not json\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}

	out.Reset()
	opts.JSON = true
	if err := listRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["reason"] == nil || got[0]["body"] == nil || got[1]["bodyText"] != "not json" {
		t.Errorf("got %v", got)
	}
	if len(got) > 0 && got[0]["expiresAt"] != "2030-06-15T11:00:00Z" {
		t.Errorf("expiresAt %v; want 2030-06-15T11:00:00Z, 14 days after it failed", got[0]["expiresAt"])
	}

}

func TestListEmptyIsNotAnError(t *testing.T) {
	empty, _ := deadQueue(t)
	t.Run("a table says so on stderr and exits 0", func(t *testing.T) {
		ios, _, out, errOut := streams()
		if err := listRun(context.Background(), &ListOptions{IO: ios, Queue: qf(empty), Now: time.Now}); err != nil {
			t.Errorf("got %v; want no error", err)
		}
		if out.Len() != 0 || errOut.String() != "no dead letters\n" {
			t.Errorf("stdout %q, stderr %q; want nothing and %q", out, errOut, "no dead letters\n")
		}
	})
	t.Run("--json prints [] and exits 0", func(t *testing.T) {
		ios, _, out, errOut := streams()
		if err := listRun(context.Background(), &ListOptions{IO: ios, Queue: qf(empty), Now: time.Now, JSON: true}); err != nil {
			t.Errorf("got %v; want no error", err)
		}
		if out.String() != "[]\n" || errOut.Len() != 0 {
			t.Errorf("stdout %q, stderr %q; want [] and nothing", out, errOut)
		}
	})
}

func TestShow(t *testing.T) {
	q, ids := deadQueue(t, `{"topics":["t"],"body":{"n":1}}`)
	ios, _, out, _ := streams()
	opts := &ShowOptions{IO: ios, Queue: qf(q), Now: func() time.Time { return now }, ID: ids[0]}
	if err := showRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"reason    reason: ", "failed    2030-06-01T11:00:00Z", "expires   2030-06-15T11:00:00Z", "\"n\": 1"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("show does not contain %q:\n%s", s, out)
		}
	}
	opts.ID = "q-nope"
	err := showRun(context.Background(), opts)
	wantExit(t, err, cmdutil.ExitNotFound)
	if err == nil || !strings.Contains(err.Error(), "socks dlq list") {
		t.Errorf("error %v should say where to find IDs", err)
	}
}

func TestRedrive(t *testing.T) {
	t.Run("redriving one ID puts it back on the queue", func(t *testing.T) {
		q, ids := deadQueue(t, "a", "b")
		ios, _, out, _ := streams()
		opts := &RedriveOptions{IO: ios, Queue: qf(q), selection: selection{IDs: []string{ids[1]}}}
		if err := redriveRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if out.String() != "redrove 1 dead letter onto the queue\n" {
			t.Errorf("stdout %q", out)
		}
		st, _ := q.Stats(context.Background())
		if st.Visible != 1 || st.Dead != 1 {
			t.Errorf("stats %+v; want 1 visible, 1 dead", st)
		}
	})
	t.Run("--all with --json", func(t *testing.T) {
		q, _ := deadQueue(t, "a", "b")
		ios, _, out, _ := streams()
		opts := &RedriveOptions{IO: ios, Queue: qf(q), selection: selection{All: true}, JSON: true}
		if err := redriveRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if out.String() != "{\"redriven\":2}\n" {
			t.Errorf("stdout %q", out)
		}
	})
	t.Run("an unknown ID exits 3", func(t *testing.T) {
		q, _ := deadQueue(t, "a")
		ios, _, _, _ := streams()
		err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(q), selection: selection{IDs: []string{"q-nope"}}})
		wantExit(t, err, cmdutil.ExitNotFound)
	})
	t.Run("IDs and --all, or neither, are usage errors", func(t *testing.T) {
		q, _ := deadQueue(t)
		for _, sel := range []selection{{}, {IDs: []string{"x"}, All: true}} {
			ios, _, _, _ := streams()
			var fe *cmdutil.FlagError
			if err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(q), selection: sel}); !errors.As(err, &fe) {
				t.Errorf("%+v: got %v; want a usage error", sel, err)
			}
		}
	})
}

func TestPurge(t *testing.T) {
	t.Run("without --yes on a non-terminal stdin it refuses", func(t *testing.T) {
		q, _ := deadQueue(t, "a")
		ios, _, _, _ := streams()
		var fe *cmdutil.FlagError
		err := purgeRun(context.Background(), &PurgeOptions{IO: ios, Queue: qf(q), selection: selection{All: true}})
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--yes") {
			t.Errorf("got %v; want a usage error naming --yes", err)
		}
		if st, _ := q.Stats(context.Background()); st.Dead != 1 {
			t.Errorf("dead letters %d; want 1 left", st.Dead)
		}
	})
	t.Run("on a terminal it asks, and no keeps everything", func(t *testing.T) {
		q, _ := deadQueue(t, "a", "b")
		ios, in, _, errOut := streams()
		ios.SetTTY(true, true, true)
		in.WriteString("n\n")
		err := purgeRun(context.Background(), &PurgeOptions{IO: ios, Queue: qf(q), selection: selection{All: true}})
		wantExit(t, err, cmdutil.ExitError)
		if !strings.Contains(errOut.String(), "Purge all 2 dead letters for good? [y/N]") {
			t.Errorf("prompt %q", errOut)
		}
		if st, _ := q.Stats(context.Background()); st.Dead != 2 {
			t.Errorf("dead letters %d; want 2 left", st.Dead)
		}
	})
	t.Run("on a terminal yes purges", func(t *testing.T) {
		q, ids := deadQueue(t, "a", "b")
		ios, in, out, _ := streams()
		ios.SetTTY(true, true, true)
		in.WriteString("y\n")
		if err := purgeRun(context.Background(), &PurgeOptions{IO: ios, Queue: qf(q), selection: selection{IDs: ids[:1]}}); err != nil {
			t.Fatal(err)
		}
		if out.String() != "purged 1 dead letter\n" {
			t.Errorf("stdout %q", out)
		}
		if st, _ := q.Stats(context.Background()); st.Dead != 1 {
			t.Errorf("dead letters %d; want 1 left", st.Dead)
		}
	})
	t.Run("--yes purges without asking", func(t *testing.T) {
		q, _ := deadQueue(t, "a", "b")
		ios, _, out, errOut := streams()
		if err := purgeRun(context.Background(), &PurgeOptions{IO: ios, Queue: qf(q), selection: selection{All: true}, Yes: true, JSON: true}); err != nil {
			t.Fatal(err)
		}
		if out.String() != "{\"purged\":2}\n" || errOut.Len() != 0 {
			t.Errorf("stdout %q stderr %q", out, errOut)
		}
	})
}

func TestADeadLetterCannotDriveTheTerminal(t *testing.T) {
	// Whoever can send to the queue decides a dead letter's body, and the
	// reason quotes from it: escape sequences in them must reach the
	// operator's terminal as visible text, not as commands (a title, a
	// cleared screen, a hyperlink). Piped, they are data, and exact.
	evil := "oops\x1b]0;owned\x07\x1b[2J\u009b31m\u202eend"
	q, ids := deadQueue(t, evil)
	for _, tty := range []bool{false, true} {
		ios, _, out, _ := streams()
		ios.SetTTY(false, tty, false)
		if err := showRun(context.Background(), &ShowOptions{IO: ios, Queue: qf(q), Now: func() time.Time { return now }, ID: ids[0]}); err != nil {
			t.Fatal(err)
		}
		ios2, _, out2, _ := streams()
		ios2.SetTTY(false, tty, false)
		if err := listRun(context.Background(), &ListOptions{IO: ios2, Queue: qf(q), Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]string{"show": out.String(), "list": out2.String()} {
			if !tty {
				if !strings.Contains(got, "reason: "+evil) {
					t.Errorf("dlq %s piped does not print the reason exactly:\n%q", name, got)
				}
				continue
			}
			// Styling adds CSI sequences of its own on a terminal; none
			// may come from the letter.
			for _, bad := range []string{"\x1b]", "\x07", "\x1b[2J", "\u009b", "\u202e"} {
				if strings.Contains(got, bad) {
					t.Errorf("dlq %s on a terminal prints %q from the letter raw:\n%q", name, bad, got)
				}
			}
			if !strings.Contains(got, `oops\x1b]0;`) {
				t.Errorf("dlq %s on a terminal does not show the escape as text:\n%q", name, got)
			}
		}
	}
}

func TestAWideReasonIsCutToTheTerminalsColumns(t *testing.T) {
	// The reason was cut to a count of characters: one of wide ones (CJK,
	// emoji) took twice the columns, and the table no longer fitted.
	for _, reason := range []string{strings.Repeat("語", 100), strings.Repeat("🦄", 100), strings.Repeat("e\u0301", 100)} {
		q, _ := deadQueue(t, reason)
		ios, _, out, _ := streams()
		ios.SetTTY(false, true, false)
		ios.SetNoColor(true)
		ios.SetWidth(120)
		if err := listRun(context.Background(), &ListOptions{IO: ios, Queue: qf(q), Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "╭") || !strings.Contains(out.String(), "…") {
			t.Errorf("a 120-column terminal got no table, or an uncut reason:\n%s", out)
		}
	}
}

// halfQueue is a queue whose Redrive and PurgeDeadLetters move n dead
// letters and then fail, as SQS's can part way through.
type halfQueue struct {
	store.Queue
	n   int
	err error
}

func (h halfQueue) Redrive(context.Context, []string) (int, error) { return h.n, h.err }
func (h halfQueue) PurgeDeadLetters(context.Context, []string) (int, error) {
	return h.n, h.err
}

func TestARedriveOrPurgeThatFailsPartWaySaysWhatItDid(t *testing.T) {
	q, _ := deadQueue(t, "a")
	fail := errors.New("SQS SendMessageBatch on queue q: connection refused")
	for _, asJSON := range []bool{false, true} {
		ios, _, out, _ := streams()
		err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(halfQueue{q, 2, fail}), selection: selection{All: true}, JSON: asJSON})
		if !errors.Is(err, fail) {
			t.Errorf("json=%v: got %v; want the failure", asJSON, err)
		}
		want := "redrove 2 dead letters onto the queue\n"
		if asJSON {
			want = "{\"redriven\":2}\n"
		}
		if out.String() != want {
			t.Errorf("json=%v: stdout %q; want %q", asJSON, out, want)
		}
		ios, _, out, _ = streams()
		err = purgeRun(context.Background(), &PurgeOptions{IO: ios, Queue: qf(halfQueue{q, 3, fail}), selection: selection{All: true}, Yes: true, JSON: asJSON})
		if !errors.Is(err, fail) {
			t.Errorf("json=%v: purge got %v; want the failure", asJSON, err)
		}
		want = "purged 3 dead letters\n"
		if asJSON {
			want = "{\"purged\":3}\n"
		}
		if out.String() != want {
			t.Errorf("json=%v: purge stdout %q; want %q", asJSON, out, want)
		}
	}
}

func TestADeadLetterHeldByAnotherCommandIsNotSaidToBeMissing(t *testing.T) {
	q, ids := deadQueue(t, "a")
	held := fmt.Errorf("redriving dead letters: 1 dead letter was held by another socks command: %w", store.ErrDeadLettersHeld)
	ios, _, out, _ := streams()
	err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(halfQueue{q, 0, held}), selection: selection{IDs: ids}})
	var exit *cmdutil.ExitCodeError
	if err == nil || errors.As(err, &exit) || !strings.HasSuffix(err.Error(), "rerun it then") {
		t.Errorf("got %v; want the failure (exit 1), saying to rerun, not exit 3", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q; want nothing", out)
	}
}

// TestARedriveSaysWhichDeadLettersTodaysRulesRefuse: a dead letter whose
// body the broker refuses (too many users, not JSON) is redriven all the
// same, but the redrive says it will be dead-lettered again at once, and
// why.
func TestARedriveSaysWhichDeadLettersTodaysRulesRefuse(t *testing.T) {
	users := make([]string, 1001)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	many, _ := json.Marshal(map[string]any{"users": users, "topics": []string{"t"}, "body": "hi"})
	q, ids := deadQueue(t, `{"topics":["t"],"body":"fine"}`, string(many), "not json")
	for _, asJSON := range []bool{false, true} {
		ios, _, out, errOut := streams()
		if err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(q), selection: selection{All: true}, JSON: asJSON}); err != nil {
			t.Fatal(err)
		}
		want := "redrove 3 dead letters onto the queue\n"
		if asJSON {
			want = "{\"redriven\":3}\n"
		}
		if out.String() != want {
			t.Errorf("stdout %q; want %q", out, want)
		}
		e := errOut.String()
		if !strings.Contains(e, "2 of them will be dead-lettered again at once") ||
			!strings.Contains(e, ids[1]+": the user list names 1001 distinct users") || !strings.Contains(e, ids[2]+": envelope ") ||
			strings.Contains(e, ids[0]) || !strings.Contains(e, "socks dlq purge") {
			t.Errorf("stderr %q; want a note naming %s and %s with why", e, ids[1], ids[2])
		}
		// They are dead letters again, as the broker would make them.
		msgs, err := q.Receive(context.Background(), 10, time.Minute, 0)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("Receive = %d, %v", len(msgs), err)
		}
		for _, m := range msgs {
			if err := q.DeadLetter(context.Background(), m, "again"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestARedriveOfManyRefusedDeadLettersNamesTenOfThem: a dead-letter
// queue full of what the broker refuses (a sender publishing junk) made
// the note name every one, a line each: thousands of lines on stderr. It
// names the first ten, as the error of dead letters redriven but kept
// does, and counts the rest.
func TestARedriveOfManyRefusedDeadLettersNamesTenOfThem(t *testing.T) {
	bodies := make([]string, 25)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("junk %d", i)
	}
	q, ids := deadQueue(t, bodies...)
	ios, _, out, errOut := streams()
	if err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(q), selection: selection{All: true}}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "redrove 25 dead letters onto the queue\n" {
		t.Errorf("stdout %q", out)
	}
	e := errOut.String()
	named := 0
	for _, id := range ids {
		if strings.Contains(e, id+": ") {
			named++
		}
	}
	if !strings.Contains(e, "25 of them will be dead-lettered again at once") || named != 10 ||
		!strings.Contains(e, "  and 15 more (`socks dlq list` shows them)\n") || strings.Count(e, "\n") != 12 {
		t.Errorf("stderr %q; want the count, ten of them named with why, and the 15 more counted", e)
	}
}

// TestAnAllThatFindsDeadLettersHeldSaysSoAndSucceeds: --all that could
// not take dead letters another command held prints its count, notes the
// held ones and exits 0 (SQS's count of them lags: they may be gone).
func TestAnAllThatFindsDeadLettersHeldSaysSoAndSucceeds(t *testing.T) {
	q, _ := deadQueue(t, "a")
	held := fmt.Errorf("redriving dead letters: 2 dead letters were held by another socks command: %w", store.ErrDeadLettersHeld)
	ios, _, out, errOut := streams()
	if err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(halfQueue{q, 1, held}), selection: selection{All: true}}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "redrove 1 dead letter onto the queue\n" || !strings.Contains(errOut.String(), "note: redriving dead letters: 2 dead letters were held") {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

// heldRedrive is a queue whose RedriveEach moves its first dead letter and
// waits for release before it returns.
type heldRedrive struct {
	store.Queue
	release chan struct{}
}

func (h heldRedrive) RedriveEach(_ context.Context, _ []string, moved func(store.DeadLetter)) (int, error) {
	moved(store.DeadLetter{ID: "q-1", Body: []byte(`{"topics":["t"],"body":1}`)})
	<-h.release
	return 1, nil
}

func TestALongRedriveShowsItsProgressOnATerminal(t *testing.T) {
	q, _ := deadQueue(t, "a")
	ios, _, out, _ := streams()
	ios.SetTTY(false, true, true)
	errOut := &lockedbuf.Buffer{}
	ios.ErrOut = errOut
	h := heldRedrive{q, make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(h), selection: selection{All: true}})
	}()
	spinning := regexp.MustCompile(`\r\x1b\[K. redriving dead letters… 1 redriven \(`)
	for range 3000 {
		if spinning.MatchString(errOut.String()) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(h.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); !spinning.MatchString(got) || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("stderr %q; want the spinner counting, then cleared", got)
	}
	if out.String() != "redrove 1 dead letter onto the queue\n" {
		t.Errorf("stdout %q", out)
	}
}

func TestARedriveThatLeftCopiesDoesNotSayToRerun(t *testing.T) {
	q, _ := deadQueue(t, "a")
	kept := fmt.Errorf("redriving dead letters: %w: connection refused", store.ErrRedrivenButKept)
	ios, _, _, _ := streams()
	err := redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(halfQueue{q, 0, kept}), selection: selection{All: true}})
	if !errors.Is(err, store.ErrRedrivenButKept) || strings.Contains(err.Error(), "rerun") {
		t.Errorf("got %v; want the error as it is, without a rerun to deliver them twice", err)
	}
}

// heldPurge is a queue whose PurgeEach deletes ten dead letters, says so
// on called, and waits for release before it returns.
type heldPurge struct {
	store.Queue
	called, release chan struct{}
}

func (h heldPurge) PurgeEach(_ context.Context, _ []string, purged func(n int)) (int, error) {
	purged(10)
	close(h.called)
	<-h.release
	return 10, nil
}

// TestALongPurgeShowsItsProgressOnATerminal: a purge of thousands on SQS
// takes as long as a redrive of them, and shows the same spinner,
// counting; --json shows none.
func TestALongPurgeShowsItsProgressOnATerminal(t *testing.T) {
	q, _ := deadQueue(t, "a")
	for _, asJSON := range []bool{false, true} {
		ios, _, out, _ := streams()
		ios.SetTTY(false, true, true)
		errOut := &lockedbuf.Buffer{}
		ios.ErrOut = errOut
		h := heldPurge{q, make(chan struct{}), make(chan struct{})}
		done := make(chan error, 1)
		go func() {
			done <- purgeRun(context.Background(), &PurgeOptions{IO: ios, Queue: qf(h), selection: selection{All: true}, Yes: true, JSON: asJSON})
		}()
		select {
		case <-h.called:
		case err := <-done:
			t.Fatalf("json=%v: purge ended (%v, stdout %q) without purging by PurgeEach", asJSON, err, out)
		}
		spinning := regexp.MustCompile(`\r\x1b\[K. purging dead letters… 10 purged \(`)
		for i := 0; !asJSON && i < 3000 && !spinning.MatchString(errOut.String()); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		close(h.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got := errOut.String()
		if asJSON {
			if got != "" || out.String() != "{\"purged\":10}\n" {
				t.Errorf("--json: stderr %q, stdout %q; want no spinner, and the count", got, out)
			}
			continue
		}
		if !spinning.MatchString(got) || !strings.HasSuffix(got, "\r\x1b[K") {
			t.Errorf("stderr %q; want the spinner counting, then cleared", got)
		}
		if out.String() != "purged 10 dead letters\n" {
			t.Errorf("stdout %q", out)
		}
	}
}

// unreadQueue is a queue whose lookup, redrive and purge do not find the
// IDs among the dead letters a read takes (SQS: the first 10,000).
type unreadQueue struct {
	store.Queue
	err error
}

func (u unreadQueue) FindDeadLetter(context.Context, string) (store.DeadLetter, bool, error) {
	return store.DeadLetter{}, false, u.err
}
func (u unreadQueue) Redrive(context.Context, []string) (int, error)          { return 0, u.err }
func (u unreadQueue) PurgeDeadLetters(context.Context, []string) (int, error) { return 0, u.err }

// TestADeadLetterPastTheFirstReadIsNotSaidToBeMissing: on SQS every read
// of the dead letters stops at 10,000; `dlq show ID` (and a redrive or
// purge of it) of one past them said there was no such dead letter (exit
// 3). It exits 1 with the queue's words, which say how to reach it, and
// no rerun of the same.
func TestADeadLetterPastTheFirstReadIsNotSaidToBeMissing(t *testing.T) {
	q, _ := deadQueue(t, "a")
	unread := fmt.Errorf("reading dead letters: 1 dead letter was (q-9) not among the first 10,000 read: purge or redrive the others first: %w", store.ErrDeadLettersUnread)
	uq := unreadQueue{q, unread}
	check := func(what string, err error, out *bytes.Buffer) {
		t.Helper()
		var exit *cmdutil.ExitCodeError
		if !errors.Is(err, store.ErrDeadLettersUnread) || (errors.As(err, &exit) && exit.Code != cmdutil.ExitError) || strings.Contains(err.Error(), "rerun") {
			t.Errorf("%s: got %v; want the queue's error, exit 1, no rerun", what, err)
		}
		if out.Len() != 0 {
			t.Errorf("%s: stdout %q; want nothing", what, out)
		}
	}
	ios, _, out, _ := streams()
	check("show", showRun(context.Background(), &ShowOptions{IO: ios, Queue: qf(uq), Now: time.Now, ID: "q-9"}), out)
	ios, _, out, _ = streams()
	check("redrive", redriveRun(context.Background(), &RedriveOptions{IO: ios, Queue: qf(uq), selection: selection{IDs: []string{"q-9"}}}), out)
	ios, _, out, _ = streams()
	check("purge", purgeRun(context.Background(), &PurgeOptions{IO: ios, Queue: qf(uq), selection: selection{IDs: []string{"q-9"}}, Yes: true}), out)
}

// TestShowPipedEndsNoLineInASpace: piped, show printed "body     " (the
// label padded for a value that follows on the next lines), a line a
// diff or an editor flags for its trailing spaces.
func TestShowPipedEndsNoLineInASpace(t *testing.T) {
	q, ids := deadQueue(t, `{"topics":["t"],"body":{"n":1}}`)
	ios, _, out, _ := streams()
	opts := &ShowOptions{IO: ios, Queue: qf(q), Now: func() time.Time { return now }, ID: ids[0]}
	if err := showRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(out.String(), "\n") {
		if strings.TrimRight(line, " \t") != line {
			t.Errorf("line %d ends in a space: %q", i+1, line)
		}
	}
	if !strings.Contains(out.String(), "\nbody\n{") {
		t.Errorf("show does not put the body under its label:\n%s", out)
	}
}
