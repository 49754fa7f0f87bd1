package awsops

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// maxOwnBody is the largest request body ownBodyClient copies: DynamoDB's
// largest request (16 MB) and SQS's (1 MiB) fit. Larger bodies (a Lambda
// function's code) go to the transport as the SDK built them.
const maxOwnBody = 16 << 20

// ownBodyClient hands the transport a request body of its own: a copy of
// the SDK's, which nothing else reads or closes.
//
// net/http's transport may still read a request's body after Do has
// returned the answer's headers (RoundTrip's documentation allows it: the
// body is read and closed in the connection's write loop, which can end
// after the answer began). The SDK closes its body as soon as Do returns,
// and its body then reads as ended: a write loop that had not finished
// saw a body shorter than its Content-Length, failed the request's write
// and closed the connection under the answer still being read. The SDK
// got "use of closed network connection" and retried, and for an SQS
// ReceiveMessage the retry found the messages the first call had received
// (and hidden for their visibility timeout) gone: a receive lost for as
// long as the timeout, seen on ElasticMQ with 128 KB messages.
type ownBodyClient struct {
	next aws.HTTPClient
}

// withOwnBodies wraps c in an ownBodyClient, once.
func withOwnBodies(c aws.HTTPClient) aws.HTTPClient {
	if _, ok := c.(ownBodyClient); ok || c == nil {
		return c
	}
	return ownBodyClient{next: c}
}

func (c ownBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength <= 0 || r.ContentLength > maxOwnBody {
		return c.next.Do(r)
	}
	b := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, b)
	_ = r.Body.Close()
	if err != nil {
		// The transport would have failed the write with it too.
		return nil, fmt.Errorf("reading the request body: %d of its %d bytes: %w", n, r.ContentLength, err)
	}
	own := r.WithContext(r.Context())
	own.Body = io.NopCloser(bytes.NewReader(b))
	own.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return c.next.Do(own)
}
