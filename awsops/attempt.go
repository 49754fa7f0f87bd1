package awsops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/store"
)

// DefaultAttemptTimeout bounds each HTTP attempt of every client socks
// builds (DynamoDB, SQS, the Management API, EventBridge, SNS, and the
// deploy control plane: IAM, Lambda, API Gateway v2, CloudWatch Logs,
// STS): an endpoint that accepts a request and never answers costs the
// caller this long per attempt, then the SDK's retryer tries again (or the
// broker's, for the Management API), and the call fails when the attempts
// are spent instead of hanging for ever. A Lambda request gets the time to
// upload its body on top (see minUploadRate).
const DefaultAttemptTimeout = 15 * time.Second

// minUploadRate is the slowest upload a Lambda attempt is given time for,
// on top of the attempt bound: 128 KiB/s, about 1 Mbit/s. CreateFunction
// and UpdateFunctionCode carry the function package in their body, base64
// in JSON: the ~4 MiB zip of the function's bootstrap is ~6 MiB of
// request, a --lambda-zip near Lambda's 50 MiB limit (MaxLambdaZip) ~67
// MiB, whose attempt may take about 9 minutes on such a link before it is
// cut short, and a small request barely more than the bound. A fixed
// bound long enough for the upload would let every other Lambda call hang
// that long; one sized by the body cuts a hung small call as short as the
// rest.
const minUploadRate = 128 << 10

// EnvAttemptTimeout names the environment variable that replaces
// DefaultAttemptTimeout in every process that reads it (a Go duration,
// such as 2s; anything else, or a value not above 0, leaves the default
// here, and config.Resolve refuses it for the commands and Lambda): for a network
// slower than the default allows, and for tests that freeze an emulator
// for longer than one attempt without waiting 15 s for it.
const EnvAttemptTimeout = config.EnvAttemptTimeout

// ClientOption tunes a client built by NewDynamoDB, NewSQS,
// NewManagementClient, NewEventBridge, NewSNS or NewControlPlane.
type ClientOption func(*clientOptions)

type clientOptions struct {
	attemptTimeout time.Duration
	check          func(*http.Response) error
}

// WithResponseCheck has NewManagementClient pass every HTTP answer to
// check before the SDK reads it: an error from check fails the call as
// one that got no answer (the body is closed unread), wrapping that
// error. The local backend's pusher checks so that the answer is its
// gateway's (pubsub.GatewayIDHeader); other clients ignore it.
func WithResponseCheck(check func(*http.Response) error) ClientOption {
	return func(o *clientOptions) { o.check = check }
}

// WithAttemptTimeout sets the bound of each HTTP attempt (when not given or
// not positive: $SOCKS_ATTEMPT_TIMEOUT, else DefaultAttemptTimeout). SQS
// ReceiveMessage gets store.MaxWait on top, as it long-polls.
func WithAttemptTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.attemptTimeout = d }
}

func resolveClientOptions(opts []ClientOption) clientOptions {
	var o clientOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.attemptTimeout <= 0 {
		o.attemptTimeout = defaultAttemptTimeout()
	}
	return o
}

// defaultAttemptTimeout is $SOCKS_ATTEMPT_TIMEOUT when it holds a duration
// above 0, else DefaultAttemptTimeout.
func defaultAttemptTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(EnvAttemptTimeout)); err == nil && d > 0 {
		return d
	}
	return DefaultAttemptTimeout
}

// AttemptTimeoutError is an HTTP attempt that got no answer within its
// bound. It is retryable (the SDK's standard retryer tries again) and does
// not unwrap to the SDK's cancellation error, which the retryer would treat
// as final.
type AttemptTimeoutError struct {
	Op    string
	Bound time.Duration
}

func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("%s got no answer within %s", e.Op, e.Bound)
}

// RetryableError tells the SDK's retryer to try again.
func (e *AttemptTimeoutError) RetryableError() bool { return true }

// Timeout marks the error as a timeout (net.Error style).
func (e *AttemptTimeoutError) Timeout() bool { return true }

// Unwrap makes errors.Is(err, context.DeadlineExceeded) hold.
func (e *AttemptTimeoutError) Unwrap() error { return context.DeadlineExceeded }

// attemptTimeoutID names the middleware in the stack.
const attemptTimeoutID = "socks.AttemptTimeout"

// addAttemptTimeout returns the API option that bounds each attempt by d
// (plus store.MaxWait for a long-polling ReceiveMessage, and the time to
// send the request's body at uploadRate bytes a second when uploadRate is
// positive). It sits after the retry middleware in the finalize step, so
// it runs once per attempt and covers sending, the answer and its
// decoding.
func addAttemptTimeout(d time.Duration, uploadRate int64) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		mw := middleware.FinalizeMiddlewareFunc(attemptTimeoutID, func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			bound := d
			if op == "ReceiveMessage" {
				bound += store.MaxWait
			}
			if req, ok := in.Request.(*smithyhttp.Request); ok && uploadRate > 0 && req.ContentLength > 0 {
				bound += time.Duration(req.ContentLength) * time.Second / time.Duration(uploadRate)
			}
			actx, cancel := context.WithTimeout(ctx, bound)
			defer cancel()
			out, md, err := next.HandleFinalize(actx, in)
			if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
				err = &AttemptTimeoutError{Op: op, Bound: readable(bound)}
			}
			return out, md, err
		})
		if _, ok := stack.Finalize.Get("Retry"); ok {
			return stack.Finalize.Insert(mw, "Retry", middleware.After)
		}
		return stack.Finalize.Add(mw, middleware.Before)
	}
}

// readable rounds an attempt bound for a message: to the millisecond below
// a second, to the second above.
func readable(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
