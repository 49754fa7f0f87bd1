package awsops

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// lateReader is an HTTP client that answers at once and leaves each
// request's body unread, as net/http's transport may when the answer
// comes before its write loop has finished: the test reads the body after
// the SDK call has returned.
type lateReader struct{ reqs []*http.Request }

func (l *lateReader) Do(r *http.Request) (*http.Response, error) {
	l.reqs = append(l.reqs, r)
	return emptyJSONAnswer(r), nil
}

// bodyAfterReturn reads the body of the one request l got, as the transport
// would after the call returned, and again as its GetBody gives it (a
// retry on a new connection).
func (l *lateReader) bodyAfterReturn(t *testing.T) (first, again []byte) {
	t.Helper()
	if len(l.reqs) != 1 {
		t.Fatalf("%d requests sent; want 1", len(l.reqs))
	}
	r := l.reqs[0]
	first, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading the request body after the call returned: %v", err)
	}
	if r.GetBody == nil {
		return first, nil
	}
	b, err := r.GetBody()
	if err != nil {
		t.Fatalf("GetBody: %v", err)
	}
	again, err = io.ReadAll(b)
	if err != nil {
		t.Fatalf("reading GetBody's body: %v", err)
	}
	return first, again
}

// TestTheTransportReadsTheWholeBodyAfterTheCallReturned shows the lost
// SQS receive's cause is gone: the SDK closes its request body as soon as
// the HTTP client returns the answer's headers, and a transport still
// writing that body then read it as ended early (its write failed and the
// connection closed under the answer). The clients socks makes hand the
// transport a body of their own.
func TestTheTransportReadsTheWholeBodyAfterTheCallReturned(t *testing.T) {
	ctx := context.Background()
	big := strings.Repeat("x", 128<<10)
	for _, c := range []struct {
		name string
		call func(cfg aws.Config) error
	}{
		{"SQS SendMessage", func(cfg aws.Config) error {
			_, err := NewSQS(cfg, "http://127.0.0.1:1").SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("http://127.0.0.1:1/q"), MessageBody: aws.String(big)})
			return err
		}},
		{"SQS ReceiveMessage", func(cfg aws.Config) error {
			_, err := NewSQS(cfg, "http://127.0.0.1:1").ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String("http://127.0.0.1:1/q")})
			return err
		}},
		{"DynamoDB PutItem", func(cfg aws.Config) error {
			_, err := NewDynamoDB(cfg, "http://127.0.0.1:1").PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]dynamotypes.AttributeValue{"pk": &dynamotypes.AttributeValueMemberS{Value: big}}})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &lateReader{}
			cfg := dummyConfig()
			cfg.HTTPClient = rec
			if err := c.call(cfg); err != nil {
				t.Fatalf("call: %v", err)
			}
			r := rec.reqs[0]
			first, again := rec.bodyAfterReturn(t)
			if int64(len(first)) != r.ContentLength {
				t.Fatalf("the body read after the call returned is %d bytes; its Content-Length is %d", len(first), r.ContentLength)
			}
			if !bytes.Equal(first, again) {
				t.Errorf("GetBody gives %d other bytes than the body (%d)", len(again), len(first))
			}
		})
	}
}

func TestABodyThatCannotBeCopiedIsPassedOnAsItCame(t *testing.T) {
	for _, c := range []struct {
		name   string
		length int64
		body   io.ReadCloser
	}{
		{"no body", 0, nil},
		{"an empty body", 0, http.NoBody},
		{"a body of unknown length", -1, io.NopCloser(strings.NewReader("streamed"))},
		{"a body over the copy's bound", maxOwnBody + 1, io.NopCloser(strings.NewReader("large"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &lateReader{}
			r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Body, r.ContentLength = c.body, c.length
			if _, err := withOwnBodies(rec).Do(r); err != nil {
				t.Fatal(err)
			}
			if rec.reqs[0] != r {
				t.Errorf("the request was copied; want it passed on as it came")
			}
		})
	}
}

func TestAShortBodyFailsTheCallInsteadOfBeingSent(t *testing.T) {
	rec := &lateReader{}
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", io.NopCloser(strings.NewReader("short")))
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = 10
	if _, err := withOwnBodies(rec).Do(r); err == nil || !strings.Contains(err.Error(), "5 of its 10 bytes") {
		t.Errorf("Do = %v; want the short body named", err)
	}
	if len(rec.reqs) != 0 {
		t.Errorf("%d requests sent; want none", len(rec.reqs))
	}
}

func TestOwnBodiesWrapOnce(t *testing.T) {
	c := withOwnBodies(&lateReader{})
	if again := withOwnBodies(c); again != c {
		t.Errorf("wrapped twice: %T", again)
	}
}
