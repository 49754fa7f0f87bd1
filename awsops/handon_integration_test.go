package awsops

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// refuseLastOnce is ElasticMQ with one fault: the first SendMessageBatch
// of more than one entry sends all but the last, which SQS reports failed
// (an InternalError, SQS's fault), as SQS does when it fails part of a
// batch.
type refuseLastOnce struct {
	SQSAPI
	mu      sync.Mutex
	refused bool
	entries []int
}

func (r *refuseLastOnce) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	r.mu.Lock()
	r.entries = append(r.entries, len(in.Entries))
	refuse := !r.refused && len(in.Entries) > 1
	r.refused = r.refused || refuse
	r.mu.Unlock()
	if !refuse {
		return r.SQSAPI.SendMessageBatch(ctx, in, opts...)
	}
	last := in.Entries[len(in.Entries)-1]
	part := *in
	part.Entries = in.Entries[:len(in.Entries)-1]
	out, err := r.SQSAPI.SendMessageBatch(ctx, &part, opts...)
	if err != nil {
		return nil, err
	}
	out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: last.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
	return out, nil
}

// failBad fails every post to a connection whose ID starts with "bad".
type failBad struct {
	mu  sync.Mutex
	got map[string]int
}

func (p *failBad) Post(_ context.Context, id string, _ []byte) error {
	if strings.HasPrefix(id, "bad") {
		return &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: id, Status: 500}
	}
	p.mu.Lock()
	p.got[id]++
	p.mu.Unlock()
	return nil
}
func (p *failBad) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}
func (p *failBad) Delete(context.Context, string) error { return nil }

// localDB is a local state file of the test's own, for the connection
// records a broker on SQS fans out to.
func localDB(t *testing.T) *local.DB {
	t.Helper()
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAFollowUpBatchSQSSentInPartIsNotSentTwice hands on more failed
// connections than one follow-up holds through SQS (ElasticMQ), which
// fails one of the two follow-ups: only that one is sent again, and the
// queue holds each follow-up once.
func TestAFollowUpBatchSQSSentInPartIsNotSentTwice(t *testing.T) {
	api := testSQSClient(t)
	queues := newTestQueues(t, api, QueueSettings{})
	faulty := &refuseLastOnce{SQSAPI: api}
	q := NewSQSQueue(faulty, queues, SQSOptions{})
	ctx := t.Context()
	db := localDB(t)
	now := time.Now()
	ids := []string{"ok"}
	for i := range pubsub.MaxFollowUpConnections + 1 {
		ids = append(ids, fmt.Sprintf("bad%04d", i))
	}
	for _, id := range ids {
		if err := db.Store().PutConnection(ctx, pubsub.Connection{ID: id, Geek: "alice", Topics: []string{"updates"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	env := pubsub.Envelope{ID: pubsub.NewMessageID(), Topics: []string{"updates"}, Body: []byte(`1`)}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(ctx, data); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, time.Minute, 5*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %d messages, %v", len(msgs), err)
	}
	p := &failBad{got: map[string]int{}}
	br := &broker.Broker{Store: db.Store(), Queue: q, Pusher: p, Sleep: func(context.Context, time.Duration) error { return nil }}
	out := br.Handle(ctx, msgs[0])
	if !out.Done || !out.HandedOn || out.Err != nil {
		t.Fatalf("outcome done=%v handedOn=%v err=%v; want done, its follow-ups handed on", out.Done, out.HandedOn, out.Err)
	}
	faulty.mu.Lock()
	entries := faulty.entries
	faulty.mu.Unlock()
	// The original's one entry, the two follow-ups, then the refused one.
	if len(entries) != 3 || entries[1] != 2 || entries[2] != 1 {
		t.Fatalf("SendMessageBatch entries per call %v; want [1 2 1]: only the refused follow-up sent again", entries)
	}
	if err := q.Delete(ctx, msgs[0].Receipt); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for deadline := time.Now().Add(30 * time.Second); len(seen) < len(ids)-1 && time.Now().Before(deadline); {
		got, err := q.Receive(ctx, 10, time.Minute, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			fe, err := pubsub.ParseEnvelope(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range fe.Connections {
				seen[id]++
			}
		}
	}
	if len(seen) != len(ids)-1 {
		t.Fatalf("the follow-ups address %d connections; want the %d that failed", len(seen), len(ids)-1)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("connection %s is in %d follow-ups; want exactly one", id, n)
		}
	}
	if p.got["ok"] != 1 {
		t.Fatalf("ok got the message %d times; want once", p.got["ok"])
	}
}
