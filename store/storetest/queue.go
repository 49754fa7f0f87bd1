package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// QueueOptions configure the queue a RunQueue subtest asks for.
type QueueOptions struct {
	// MaxReceives is the redrive limit (0: store.DefaultMaxReceives).
	MaxReceives int
}

// RunQueue runs the store.Queue conformance suite. newQueue must return a
// fresh, empty, isolated queue (and dead-letter queue) for each call.
func RunQueue(t *testing.T, newQueue func(t *testing.T, opts QueueOptions) store.Queue) {
	for _, tc := range queueTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newQueue(t, QueueOptions{MaxReceives: tc.maxReceives}))
		})
	}
}

type queueTest struct {
	name        string
	maxReceives int
	run         func(t *testing.T, q store.Queue)
}

// Short real-clock durations, so that SQS-like backends pass too.
const (
	// shortVisibility is the visibility timeout of tests that wait for a
	// message to come back.
	shortVisibility = time.Second
	// longVisibility keeps a message hidden for longer than any subtest.
	longVisibility = 30 * time.Second
	// comeBack is how long a test waits for a message to come back after
	// shortVisibility.
	comeBack = 4 * time.Second
)

func send(t *testing.T, q store.Queue, body string) string {
	t.Helper()
	id, err := q.Send(t.Context(), []byte(body))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if id == "" {
		t.Fatal("Send returned an empty ID")
	}
	return id
}

// receive returns up to n messages, long-polling for the first for wait.
func receive(t *testing.T, q store.Queue, n int, visibility, wait time.Duration) []store.Message {
	t.Helper()
	msgs, err := q.Receive(t.Context(), n, visibility, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return msgs
}

// receiveOne long-polls for one message and fails the test if none comes.
func receiveOne(t *testing.T, q store.Queue, visibility, wait time.Duration) store.Message {
	t.Helper()
	msgs := receive(t, q, 1, visibility, wait)
	if len(msgs) != 1 {
		t.Fatalf("Receive returned %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// receiveAll receives until it has n messages or timeout passes.
func receiveAll(t *testing.T, q store.Queue, n int, visibility, timeout time.Duration) []store.Message {
	t.Helper()
	var out []store.Message
	deadline := time.Now().Add(timeout)
	for len(out) < n && time.Now().Before(deadline) {
		msgs := receive(t, q, store.MaxBatch, visibility, time.Second)
		if len(msgs) > store.MaxBatch {
			t.Fatalf("Receive returned %d messages, more than MaxBatch", len(msgs))
		}
		out = append(out, msgs...)
	}
	return out
}

// wantNothing fails unless a long poll of wait finds no message.
func wantNothing(t *testing.T, q store.Queue, wait time.Duration) {
	t.Helper()
	if msgs := receive(t, q, store.MaxBatch, longVisibility, wait); len(msgs) != 0 {
		t.Fatalf("Receive returned %d messages (first %s, count %d), want none", len(msgs), msgs[0].Body, msgs[0].ReceiveCount)
	}
}

// deadLetter receives body's message and dead-letters it with reason.
func deadLetter(t *testing.T, q store.Queue, body, reason string) store.Message {
	t.Helper()
	send(t, q, body)
	m := receiveOne(t, q, longVisibility, comeBack)
	if err := q.DeadLetter(t.Context(), m, reason); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	return m
}

// deadLetters waits until the dead letters number n and returns them.
func deadLetters(t *testing.T, q store.Queue, n int) []store.DeadLetter {
	t.Helper()
	var dls []store.DeadLetter
	eventually(t, 3*time.Second, func() (bool, string) {
		var err error
		dls, err = q.ListDeadLetters(t.Context(), 100)
		if err != nil {
			t.Fatalf("ListDeadLetters: %v", err)
		}
		return len(dls) == n, fmt.Sprintf("%d dead letters, want %d", len(dls), n)
	})
	return dls
}

func receipts(msgs []store.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Receipt
	}
	return out
}

func deadIDs(dls []store.DeadLetter) []string {
	out := make([]string, len(dls))
	for i, d := range dls {
		out[i] = d.ID
	}
	return out
}

func bodies(msgs []store.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	slices.Sort(out)
	return out
}

// usedUpFollowUp is a follow-up envelope (pubsub.FollowUp) that has used
// up its attempts: the broker (broker.DefaultMaxAttempts 5) dead-letters it
// at once, without a post, as long as it says attempt 6.
const usedUpFollowUp = `{"id":"m-fu","topics":["updates"],"body":{"n":1},"connections":["c1","c2"],"attempt":6,"lastError":"HTTP 500"}`

// wantFreshFollowUp fails unless m is the follow-up dead, redriven: the
// same envelope with its attempts started again (pubsub.Redriven).
func wantFreshFollowUp(t *testing.T, m, dead store.Message) {
	t.Helper()
	env, err := pubsub.ParseEnvelope(m.Body)
	if err != nil {
		t.Fatalf("redriven follow-up %s: %v", m.Body, err)
	}
	was, _ := pubsub.ParseEnvelope(dead.Body)
	if env.Attempt != 0 || env.ID != was.ID || !slices.Equal(env.Connections, was.Connections) ||
		string(env.Body) != string(was.Body) || env.LastError != was.LastError {
		t.Errorf("redriven follow-up = %s; want %s with its attempts started again (attempt 0)", m.Body, dead.Body)
	}
}

var queueTests = []queueTest{
	{name: "a sent message is received with its ID, body, send time and a receive count of 1", run: func(t *testing.T, q store.Queue) {
		before := time.Now()
		id := send(t, q, `{"topics":["updates"],"body":1}`)
		m := receiveOne(t, q, longVisibility, comeBack)
		if m.ID != id || string(m.Body) != `{"topics":["updates"],"body":1}` || m.ReceiveCount != 1 || m.Receipt == "" {
			t.Errorf("received ID %q body %s count %d receipt %q; want ID %q, the body sent, count 1 and a receipt", m.ID, m.Body, m.ReceiveCount, m.Receipt, id)
		}
		// Allow for another clock (an emulator) and for second precision.
		if m.SentAt.Before(before.Add(-5*time.Second)) || m.SentAt.After(time.Now().Add(5*time.Second)) {
			t.Errorf("SentAt = %v, want about %v", m.SentAt, before)
		}
	}},
	{name: "SendBatch returns one ID per body in order and splits batches larger than ten", run: func(t *testing.T, q store.Queue) {
		var sent [][]byte
		for i := range 23 {
			sent = append(sent, fmt.Appendf(nil, `{"n":%d}`, i))
		}
		ids, err := q.SendBatch(t.Context(), sent)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != len(sent) {
			t.Fatalf("SendBatch returned %d IDs, want %d", len(ids), len(sent))
		}
		want := make(map[string][]byte)
		for i, id := range ids {
			if id == "" || want[id] != nil {
				t.Fatalf("ID %d is %q: empty or repeated", i, id)
			}
			want[id] = sent[i]
		}
		got := receiveAll(t, q, len(sent), longVisibility, 4*time.Second)
		if len(got) != len(sent) {
			t.Fatalf("received %d messages, want %d", len(got), len(sent))
		}
		for _, m := range got {
			if !bytes.Equal(m.Body, want[m.ID]) {
				t.Errorf("message %s has body %s, want %s", m.ID, m.Body, want[m.ID])
			}
			delete(want, m.ID)
		}
		if len(want) != 0 {
			t.Errorf("%d messages never came", len(want))
		}
	}},
	{name: "a JSON body holding U+FFFE and U+FFFF, which SQS refuses raw, is carried as the same JSON", run: func(t *testing.T, q store.Queue) {
		body := "{\"topics\":[\"updates\"],\"body\":\"a\uFFFEb\uFFFFc\"}"
		id := send(t, q, body)
		m := receiveOne(t, q, longVisibility, comeBack)
		var got, want any
		if err := json.Unmarshal(m.Body, &got); err != nil || json.Unmarshal([]byte(body), &want) != nil || !reflect.DeepEqual(got, want) || m.ID != id {
			t.Errorf("received %s (%q, %v); want the JSON sent, %q", m.ID, m.Body, err, body)
		}
	}},
	{name: "a message of exactly the queue's limit is carried, and one byte more is refused in the same words on every backend", run: func(t *testing.T, q store.Queue) {
		// Multi-byte characters up to the last byte: the limit is in
		// bytes, as SQS counts them.
		at := `"` + strings.Repeat("é", (pubsub.MaxEnvelopeBytes-2)/2) + `"`
		if len(at) != pubsub.MaxEnvelopeBytes {
			t.Fatalf("the test's message is %d bytes", len(at))
		}
		send(t, q, at)
		m := receiveOne(t, q, longVisibility, comeBack)
		if !bytes.Equal(m.Body, []byte(at)) {
			t.Errorf("a message at the limit came back as %d other bytes", len(m.Body))
		}
		over := at[:len(at)-1] + `x"`
		_, err := q.Send(t.Context(), []byte(over))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("is %d bytes; a queue message holds at most %d bytes", len(over), pubsub.MaxEnvelopeBytes)) {
			t.Errorf("Send of %d bytes = %v; want it refused, saying the size and the limit", len(over), err)
		}
		wantNothing(t, q, 0)
	}},
	{name: "an envelope that validates comes off the queue with a body API Gateway delivers, the same JSON", run: func(t *testing.T, q store.Queue) {
		// U+FFFE and U+FFFF take three bytes raw and six escaped, as SQS
		// needs them: a body at the limit must not grow past it on one
		// backend only.
		for _, body := range []string{
			`"` + strings.Repeat("\uFFFE", (pubsub.MaxMessageBytes-2)/3) + `"`,
			`"` + strings.Repeat("x", pubsub.MaxMessageBytes-5) + "\uFFFF" + `"`,
			`"` + strings.Repeat("x", pubsub.MaxMessageBytes-8) + "\uFFFF" + `"`,
		} {
			env := pubsub.Envelope{ID: "m-ffff", Topics: []string{"t"}, Body: json.RawMessage(body)}
			if err := env.Validate(); err != nil {
				if !strings.Contains(err.Error(), "128 KB") {
					t.Errorf("a body of %d bytes refused with %q; want the 128 KB limit named", len(body), err)
				}
				continue
			}
			data, err := env.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			send(t, q, string(data))
			m := receiveOne(t, q, longVisibility, comeBack)
			got, err := pubsub.ParseEnvelope(m.Body)
			if err != nil {
				t.Fatalf("a body of %d bytes validated, but its envelope comes off the queue refused: %v", len(body), err)
			}
			var a, b any
			if json.Unmarshal(got.Body, &a) != nil || json.Unmarshal([]byte(body), &b) != nil || !reflect.DeepEqual(a, b) {
				t.Errorf("the body came off the queue as other JSON")
			}
			if err := q.Delete(t.Context(), m.Receipt); err != nil {
				t.Fatal(err)
			}
		}
	}},
	{name: "SendBatch with no bodies sends nothing", run: func(t *testing.T, q store.Queue) {
		ids, err := q.SendBatch(t.Context(), nil)
		if err != nil || len(ids) != 0 {
			t.Fatalf("SendBatch(nil) = %q, %v; want nothing", ids, err)
		}
		wantNothing(t, q, 0)
	}},
	{name: "Receive never returns more than MaxBatch messages", run: func(t *testing.T, q store.Queue) {
		var sent [][]byte
		for i := range 15 {
			sent = append(sent, fmt.Appendf(nil, `{"n":%d}`, i))
		}
		if _, err := q.SendBatch(t.Context(), sent); err != nil {
			t.Fatal(err)
		}
		msgs := receive(t, q, 50, longVisibility, comeBack)
		if len(msgs) == 0 || len(msgs) > store.MaxBatch {
			t.Errorf("Receive(50) returned %d messages, want 1 to %d", len(msgs), store.MaxBatch)
		}
	}},
	{name: "Receive on an empty queue without waiting returns an empty slice and no error", run: func(t *testing.T, q store.Queue) {
		wantNothing(t, q, 0)
	}},
	{name: "a long poll on an empty queue returns an empty slice when the wait is over", run: func(t *testing.T, q store.Queue) {
		wantNothing(t, q, time.Second)
	}},
	{name: "a long poll returns a message sent while it waits before the wait is over", run: func(t *testing.T, q store.Queue) {
		const wait = 4 * time.Second
		type result struct {
			msgs    []store.Message
			err     error
			elapsed time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			msgs, err := q.Receive(t.Context(), 1, longVisibility, wait)
			done <- result{msgs, err, time.Since(start)}
		}()
		time.Sleep(300 * time.Millisecond)
		send(t, q, `{"late":true}`)
		r := <-done
		if r.err != nil || len(r.msgs) != 1 {
			t.Fatalf("Receive = %d messages, %v; want the message", len(r.msgs), r.err)
		}
		if r.elapsed >= wait {
			t.Errorf("the long poll returned after %s, the whole wait", r.elapsed)
		}
	}},
	{name: "a received message stays hidden from other receivers during its visibility timeout", run: func(t *testing.T, q store.Queue) {
		send(t, q, `{}`)
		receiveOne(t, q, longVisibility, comeBack)
		wantNothing(t, q, time.Second)
	}},
	{name: "a message not deleted within its visibility timeout comes back with a higher receive count", run: func(t *testing.T, q store.Queue) {
		id := send(t, q, `{}`)
		first := receiveOne(t, q, shortVisibility, comeBack)
		again := receiveOne(t, q, longVisibility, comeBack)
		if again.ID != id || again.ReceiveCount != 2 {
			t.Errorf("came back as %s with count %d, want %s with count 2", again.ID, again.ReceiveCount, id)
		}
		if again.Receipt == first.Receipt {
			t.Error("the second receive has the same receipt as the first")
		}
	}},
	{name: "a deleted message does not come back", run: func(t *testing.T, q store.Queue) {
		send(t, q, `{}`)
		m := receiveOne(t, q, shortVisibility, comeBack)
		if err := q.Delete(t.Context(), m.Receipt); err != nil {
			t.Fatal(err)
		}
		wantNothing(t, q, 2*shortVisibility)
	}},
	{name: "deleting a message twice is not an error", run: func(t *testing.T, q store.Queue) {
		send(t, q, `{}`)
		m := receiveOne(t, q, longVisibility, comeBack)
		for range 2 {
			if err := q.Delete(t.Context(), m.Receipt); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
	}},
	{name: "deleting one message leaves the others", run: func(t *testing.T, q store.Queue) {
		send(t, q, `{"n":1}`)
		send(t, q, `{"n":2}`)
		msgs := receiveAll(t, q, 2, shortVisibility, comeBack)
		if len(msgs) != 2 {
			t.Fatalf("received %d messages, want 2", len(msgs))
		}
		if err := q.Delete(t.Context(), msgs[0].Receipt); err != nil {
			t.Fatal(err)
		}
		back := receiveOne(t, q, longVisibility, comeBack)
		if back.ID != msgs[1].ID {
			t.Errorf("%s came back, want %s", back.ID, msgs[1].ID)
		}
	}},
	{name: "ChangeVisibility to zero makes a received message visible at once", run: func(t *testing.T, q store.Queue) {
		id := send(t, q, `{}`)
		m := receiveOne(t, q, longVisibility, comeBack)
		if err := q.ChangeVisibility(t.Context(), m.Receipt, 0); err != nil {
			t.Fatal(err)
		}
		again := receiveOne(t, q, longVisibility, 2*time.Second)
		if again.ID != id || again.ReceiveCount != 2 {
			t.Errorf("got %s with count %d, want %s with count 2", again.ID, again.ReceiveCount, id)
		}
	}},
	{name: "ChangeVisibility extends how long a received message stays hidden", run: func(t *testing.T, q store.Queue) {
		send(t, q, `{}`)
		m := receiveOne(t, q, shortVisibility, comeBack)
		if err := q.ChangeVisibility(t.Context(), m.Receipt, longVisibility); err != nil {
			t.Fatal(err)
		}
		wantNothing(t, q, 2*shortVisibility)
	}},
	{name: "ChangeVisibilityBatch extends how long each of more than MaxBatch received messages stays hidden", run: func(t *testing.T, q store.Queue) {
		n := store.MaxBatch + 2
		for i := range n {
			send(t, q, fmt.Sprintf(`{"n":%d}`, i))
		}
		msgs := receiveAll(t, q, n, shortVisibility, comeBack)
		if len(msgs) != n {
			t.Fatalf("received %d messages, want %d", len(msgs), n)
		}
		if errs := q.ChangeVisibilityBatch(t.Context(), receipts(msgs), longVisibility); errs != nil {
			t.Fatalf("ChangeVisibilityBatch = %v; want nil", errs)
		}
		wantNothing(t, q, 2*shortVisibility)
	}},
	{name: "ChangeVisibilityBatch to zero makes each received message visible at once, and a deleted one among them is no failure", run: func(t *testing.T, q store.Queue) {
		for i := range 3 {
			send(t, q, fmt.Sprintf(`{"n":%d}`, i))
		}
		msgs := receiveAll(t, q, 3, longVisibility, comeBack)
		if len(msgs) != 3 {
			t.Fatalf("received %d messages, want 3", len(msgs))
		}
		if err := q.Delete(t.Context(), msgs[0].Receipt); err != nil {
			t.Fatal(err)
		}
		if errs := q.ChangeVisibilityBatch(t.Context(), receipts(msgs), 0); errs != nil {
			t.Fatalf("ChangeVisibilityBatch = %v; want nil (a deleted message's receipt is stale, not a failure)", errs)
		}
		again := receiveAll(t, q, 2, longVisibility, comeBack)
		if g, w := bodies(again), bodies(msgs[1:]); !slices.Equal(g, w) {
			t.Fatalf("received %q again, want %q", g, w)
		}
		for _, m := range again {
			if m.ReceiveCount != 2 {
				t.Errorf("%s has receive count %d, want 2", m.Body, m.ReceiveCount)
			}
		}
	}},
	{name: "ChangeVisibilityBatch with a stale receipt from an earlier receive leaves the message received again hidden", run: func(t *testing.T, q store.Queue) {
		send(t, q, `{}`)
		stale := receiveOne(t, q, shortVisibility, comeBack)
		receiveOne(t, q, longVisibility, comeBack)
		if errs := q.ChangeVisibilityBatch(t.Context(), []string{stale.Receipt}, 0); errs != nil {
			t.Fatalf("ChangeVisibilityBatch with a stale receipt = %v; want nil", errs)
		}
		wantNothing(t, q, time.Second)
	}},
	{name: "ChangeVisibilityBatch of no receipts does nothing", run: func(t *testing.T, q store.Queue) {
		if errs := q.ChangeVisibilityBatch(t.Context(), nil, 0); errs != nil {
			t.Fatalf("ChangeVisibilityBatch(nil) = %v; want nil", errs)
		}
	}},
	{name: "a stale receipt from an earlier receive does not delete the message received again", run: func(t *testing.T, q store.Queue) {
		id := send(t, q, `{}`)
		stale := receiveOne(t, q, shortVisibility, comeBack)
		current := receiveOne(t, q, longVisibility, comeBack)
		// Backends may answer a stale receipt with nil (local, like SQS's
		// DeleteMessage) or with an error; either way the message stays.
		if err := q.Delete(t.Context(), stale.Receipt); err != nil {
			t.Logf("Delete with a stale receipt: %v", err)
		}
		if err := q.ChangeVisibility(t.Context(), current.Receipt, 0); err != nil {
			t.Fatal(err)
		}
		again := receiveOne(t, q, longVisibility, 2*time.Second)
		if again.ID != id || again.ReceiveCount != 3 {
			t.Errorf("got %s with count %d, want %s with count 3", again.ID, again.ReceiveCount, id)
		}
	}},
	{name: "DeadLetter with the receipt of an earlier receive fails with ErrStaleReceipt and leaves the message to its receiver", run: func(t *testing.T, q store.Queue) {
		id := send(t, q, `{}`)
		stale := receiveOne(t, q, shortVisibility, comeBack)
		current := receiveOne(t, q, longVisibility, comeBack)
		if err := q.DeadLetter(t.Context(), stale, "failed"); !errors.Is(err, store.ErrStaleReceipt) {
			t.Fatalf("DeadLetter with a stale receipt = %v; want an error wrapping store.ErrStaleReceipt", err)
		}
		if dls, err := q.ListDeadLetters(t.Context(), 0); err != nil || len(dls) != 0 {
			t.Fatalf("dead letters = %d, %v; want none", len(dls), err)
		}
		// The receiver of now still has it, and can dead-letter it.
		if err := q.DeadLetter(t.Context(), current, "failed again"); err != nil {
			t.Fatalf("DeadLetter with the current receipt: %v", err)
		}
		if d := deadLetters(t, q, 1)[0]; d.ID != id || d.Reason != "failed again" {
			t.Errorf("dead letter = %s %q; want %s with the current receiver's reason", d.ID, d.Reason, id)
		}
	}},
	{name: "DeadLetter of a message already deleted fails with ErrStaleReceipt and writes no dead letter", run: func(t *testing.T, q store.Queue) {
		send(t, q, `{}`)
		m := receiveOne(t, q, longVisibility, comeBack)
		if err := q.Delete(t.Context(), m.Receipt); err != nil {
			t.Fatal(err)
		}
		if err := q.DeadLetter(t.Context(), m, "failed"); !errors.Is(err, store.ErrStaleReceipt) {
			t.Fatalf("DeadLetter of a deleted message = %v; want an error wrapping store.ErrStaleReceipt", err)
		}
		if dls, err := q.ListDeadLetters(t.Context(), 0); err != nil || len(dls) != 0 {
			t.Fatalf("dead letters = %d, %v; want none", len(dls), err)
		}
	}},
	{name: "DeadLetter moves a received message to the dead letters with its reason", run: func(t *testing.T, q store.Queue) {
		before := time.Now()
		m := deadLetter(t, q, `{"poison":true}`, "body is not an envelope")
		wantNothing(t, q, 0)
		dls := deadLetters(t, q, 1)
		d := dls[0]
		if d.ID != m.ID || string(d.Body) != `{"poison":true}` || d.Reason != "body is not an envelope" || d.ReceiveCount < 1 {
			t.Errorf("dead letter = %s %s %q count %d; want %s, its body, the reason and count >= 1", d.ID, d.Body, d.Reason, d.ReceiveCount, m.ID)
		}
		if d.FailedAt.Before(before.Add(-5*time.Second)) || d.FailedAt.After(time.Now().Add(5*time.Second)) {
			t.Errorf("FailedAt = %v, want about %v", d.FailedAt, before)
		}
	}},
	// The local queue kept a reason of any length (one that names
	// thousands of topics), SQS's 4 KB of it.
	{name: "DeadLetter keeps the first 4 KB of a longer reason", run: func(t *testing.T, q store.Queue) {
		reason := strings.Repeat("topics [updates news] ", 1000)
		deadLetter(t, q, `{"poison":true}`, reason)
		d := deadLetters(t, q, 1)[0]
		if want := reason[:store.MaxDeadLetterReasonBytes] + "…"; d.Reason != want {
			t.Errorf("reason of %d bytes kept as %d bytes ending %q; want its first %d and \"…\"", len(reason), len(d.Reason), d.Reason[max(0, len(d.Reason)-20):], store.MaxDeadLetterReasonBytes)
		}
	}},
	{name: "a message received more than MaxReceives times goes to the dead letters by itself, with a reason", maxReceives: 2, run: func(t *testing.T, q store.Queue) {
		id := send(t, q, `{"fails":"always"}`)
		for n := 1; n <= 2; n++ {
			m := receiveOne(t, q, 0, comeBack)
			if m.ReceiveCount != n {
				t.Fatalf("receive %d has count %d", n, m.ReceiveCount)
			}
		}
		wantNothing(t, q, time.Second)
		d := deadLetters(t, q, 1)[0]
		if d.ID != id || d.Reason == "" || d.ReceiveCount < 2 {
			t.Errorf("dead letter = %s %q count %d; want %s with a reason and count >= 2", d.ID, d.Reason, d.ReceiveCount, id)
		}
	}},
	{name: "ListDeadLetters lists the oldest failure first and honours the limit", run: func(t *testing.T, q store.Queue) {
		var want []string
		for i := range 3 {
			want = append(want, deadLetter(t, q, fmt.Sprintf(`{"n":%d}`, i), "failed").ID)
			time.Sleep(20 * time.Millisecond)
		}
		if got := deadIDs(deadLetters(t, q, 3)); !slices.Equal(got, want) {
			t.Errorf("ListDeadLetters = %q, want %q", got, want)
		}
		two, err := q.ListDeadLetters(t.Context(), 2)
		if err != nil || len(two) != 2 {
			t.Errorf("ListDeadLetters(2) = %d, %v; want 2", len(two), err)
		}
	}},
	{name: "Redrive with no IDs puts every dead letter back with a fresh receive count", run: func(t *testing.T, q store.Queue) {
		a := deadLetter(t, q, `{"n":1}`, "failed")
		b := deadLetter(t, q, `{"n":2}`, "failed")
		deadLetters(t, q, 2)
		n, err := q.Redrive(t.Context(), nil)
		if err != nil || n != 2 {
			t.Fatalf("Redrive = %d, %v; want 2", n, err)
		}
		got := receiveAll(t, q, 2, longVisibility, comeBack)
		if g, w := bodies(got), bodies([]store.Message{a, b}); !slices.Equal(g, w) {
			t.Fatalf("received %q, want %q", g, w)
		}
		for _, m := range got {
			if m.ReceiveCount != 1 {
				t.Errorf("%s has receive count %d, want 1", m.Body, m.ReceiveCount)
			}
		}
		deadLetters(t, q, 0)
	}},
	{name: "Redrive with IDs moves only those dead letters", run: func(t *testing.T, q store.Queue) {
		a := deadLetter(t, q, `{"n":1}`, "failed")
		deadLetter(t, q, `{"n":2}`, "failed")
		deadLetters(t, q, 2)
		n, err := q.Redrive(t.Context(), []string{a.ID, "no-such-id"})
		if err != nil || n != 1 {
			t.Fatalf("Redrive = %d, %v; want 1", n, err)
		}
		if got := receiveOne(t, q, longVisibility, comeBack); string(got.Body) != string(a.Body) {
			t.Errorf("received %s, want %s", got.Body, a.Body)
		}
		if left := deadLetters(t, q, 1); string(left[0].Body) != `{"n":2}` {
			t.Errorf("left %s in the dead letters", left[0].Body)
		}
	}},
	{name: "Redrive with no IDs starts a follow-up's attempts again and leaves other bodies as they were", run: func(t *testing.T, q store.Queue) {
		fu := deadLetter(t, q, usedUpFollowUp, "not delivered to 2 connections after 6 attempts")
		orig := deadLetter(t, q, `{"id":"m-orig","topics":["updates"],"body":{"a":[1, 2]}}`, "failed 5 times")
		junk := deadLetter(t, q, `not an envelope`, "unusable envelope")
		deadLetters(t, q, 3)
		if n, err := q.Redrive(t.Context(), nil); err != nil || n != 3 {
			t.Fatalf("Redrive = %d, %v; want 3", n, err)
		}
		got := receiveAll(t, q, 3, longVisibility, comeBack)
		if len(got) != 3 {
			t.Fatalf("received %d messages, want 3", len(got))
		}
		for _, m := range got {
			switch {
			case bytes.Contains(m.Body, []byte(`"connections"`)):
				wantFreshFollowUp(t, m, fu)
			case string(m.Body) != string(orig.Body) && string(m.Body) != string(junk.Body):
				t.Errorf("received %s; want %s or %s unchanged", m.Body, orig.Body, junk.Body)
			}
			if m.ReceiveCount != 1 {
				t.Errorf("%s has receive count %d, want 1", m.Body, m.ReceiveCount)
			}
		}
	}},
	{name: "Redrive with IDs starts a follow-up's attempts again each time it is redriven", run: func(t *testing.T, q store.Queue) {
		fu := deadLetter(t, q, usedUpFollowUp, "not delivered to 2 connections after 6 attempts")
		deadLetters(t, q, 1)
		for round := 1; round <= 2; round++ {
			id := deadLetters(t, q, 1)[0].ID
			if n, err := q.Redrive(t.Context(), []string{id}); err != nil || n != 1 {
				t.Fatalf("round %d: Redrive(%s) = %d, %v; want 1", round, id, n, err)
			}
			m := receiveOne(t, q, longVisibility, comeBack)
			if m.ReceiveCount != 1 {
				t.Errorf("round %d: receive count %d, want 1", round, m.ReceiveCount)
			}
			wantFreshFollowUp(t, m, fu)
			// It fails again: dead-letter it as received.
			if err := q.DeadLetter(t.Context(), m, "failed again"); err != nil {
				t.Fatalf("round %d: DeadLetter: %v", round, err)
			}
		}
	}},
	{name: "Redrive and PurgeDeadLetters with an empty ID list do nothing", run: func(t *testing.T, q store.Queue) {
		deadLetter(t, q, `{}`, "failed")
		deadLetters(t, q, 1)
		if n, err := q.Redrive(t.Context(), []string{}); err != nil || n != 0 {
			t.Errorf("Redrive([]) = %d, %v; want 0", n, err)
		}
		if n, err := q.PurgeDeadLetters(t.Context(), []string{}); err != nil || n != 0 {
			t.Errorf("PurgeDeadLetters([]) = %d, %v; want 0", n, err)
		}
		deadLetters(t, q, 1)
	}},
	{name: "PurgeDeadLetters with IDs deletes only those and with none deletes the rest", run: func(t *testing.T, q store.Queue) {
		a := deadLetter(t, q, `{"n":1}`, "failed")
		deadLetter(t, q, `{"n":2}`, "failed")
		deadLetter(t, q, `{"n":3}`, "failed")
		deadLetters(t, q, 3)
		if n, err := q.PurgeDeadLetters(t.Context(), []string{a.ID}); err != nil || n != 1 {
			t.Fatalf("PurgeDeadLetters(one) = %d, %v; want 1", n, err)
		}
		deadLetters(t, q, 2)
		if n, err := q.PurgeDeadLetters(t.Context(), nil); err != nil || n != 2 {
			t.Fatalf("PurgeDeadLetters(nil) = %d, %v; want 2", n, err)
		}
		deadLetters(t, q, 0)
		wantNothing(t, q, 0)
	}},
	{name: "Stats counts visible, in-flight and dead messages", run: func(t *testing.T, q store.Queue) {
		before := time.Now()
		deadLetter(t, q, `{"dead":true}`, "failed")
		send(t, q, `{"n":1}`)
		receiveOne(t, q, longVisibility, comeBack)
		send(t, q, `{"n":2}`)
		send(t, q, `{"n":3}`)
		eventually(t, 3*time.Second, func() (bool, string) {
			st, err := q.Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ok := st.Visible == 2 && st.InFlight == 1 && st.Dead == 1 && !st.OldestDeadAt.IsZero()
			return ok, fmt.Sprintf("Stats = %+v, want 2 visible, 1 in flight, 1 dead with a time", st)
		})
		st, _ := q.Stats(t.Context())
		if st.OldestDeadAt.Before(before.Add(-5 * time.Second)) {
			t.Errorf("OldestDeadAt = %v, want about %v", st.OldestDeadAt, before)
		}
	}},
	{name: "Stats of a new queue is all zero", run: func(t *testing.T, q store.Queue) {
		st, err := q.Stats(t.Context())
		if err != nil || st != (store.QueueStats{}) {
			t.Errorf("Stats = %+v, %v; want zero", st, err)
		}
	}},
}
