package awsops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// throttlingAPIGateway is an API Gateway on 127.0.0.1 that answers the
// first throttled CreateApi calls 429 TooManyRequestsException, as API
// Gateway answers a create over its rate, having made nothing, and makes
// the API at the next one. It counts the creates and the reads (GetApis).
type throttlingAPIGateway struct {
	creates, reads atomic.Int64
}

func newThrottlingAPIGateway(t *testing.T, throttled int64) (*throttlingAPIGateway, *ControlPlane) {
	t.Helper()
	g := &throttlingAPIGateway{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == "/v2/apis":
			if g.creates.Add(1) <= throttled {
				w.Header().Set("X-Amzn-Errortype", "TooManyRequestsException")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, `{"message":"Too Many Requests"}`)
				return
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"apiId":"thr0001","apiEndpoint":"wss://thr0001.execute-api.us-east-1.amazonaws.com"}`)
		case r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == "/v2/apis":
			g.reads.Add(1)
			_, _ = io.WriteString(w, `{"items":[]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"not here"}`)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := dummyConfig()
	// The SDK's standard retryer, without its pauses.
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	}
	return g, NewControlPlane(cfg, Endpoints{All: srv.URL})
}

// apiStep is the deploy step that makes the WebSocket API.
func apiStep(t *testing.T, d *Deployer) deployStepDef {
	t.Helper()
	for _, s := range d.steps() {
		if s.kind == "websocket api" {
			return s
		}
	}
	t.Fatal("no websocket api step")
	return deployStepDef{}
}

// TestAThrottledCreateIsRetriedAndNotTakenForOneThatMayHaveBeenMade: a
// create sent once (sendOnce) answered 429 TooManyRequestsException,
// which says the server made nothing, was taken for a failure whose
// create may have been done (UnansweredCreateError): deploy read the
// step again after each one, counted it among its three sends, and when
// all three were throttled it said the API "may have been made all the
// same". A throttled create is now retried as the SDK retries it, with
// no look again, and one throttled to the end fails as a throttle,
// without saying it may have been made.
func TestAThrottledCreateIsRetriedAndNotTakenForOneThatMayHaveBeenMade(t *testing.T) {
	t.Run("throttled twice, then made", func(t *testing.T) {
		g, cp := newThrottlingAPIGateway(t, 2)
		d := &Deployer{CP: cp, Spec: DeploySpec{Stack: "thr", Region: "us-east-1"}, Sleep: func(context.Context, time.Duration) error { return nil }}
		if err := d.applyStep(t.Context(), apiStep(t, d), ActionCreate, nil); err != nil {
			t.Fatalf("applyStep: %v", err)
		}
		if got := g.creates.Load(); got != 3 {
			t.Errorf("CreateApi was sent %d times; want 3 (two throttled, one made)", got)
		}
		if got := g.reads.Load(); got != 0 {
			t.Errorf("the API was looked for again %d times after throttled creates, which made nothing; want 0", got)
		}
		if d.st.apiID != "thr0001" {
			t.Errorf("the API is %q; want thr0001", d.st.apiID)
		}
	})
	t.Run("throttled to the end", func(t *testing.T) {
		g, cp := newThrottlingAPIGateway(t, 1<<30)
		d := &Deployer{CP: cp, Spec: DeploySpec{Stack: "thr", Region: "us-east-1"}, Sleep: func(context.Context, time.Duration) error { return nil }}
		err := d.applyStep(t.Context(), apiStep(t, d), ActionCreate, nil)
		var lost *UnansweredCreateError
		if err == nil || errors.As(err, &lost) || strings.Contains(err.Error(), "may have been made") {
			t.Fatalf("applyStep of a create throttled every time = %v; want the throttle, not that it may have been made", err)
		}
		if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
			t.Errorf("applyStep = %v; want the throttle", err)
		}
		if got := g.creates.Load(); got != int64(retry.DefaultMaxAttempts) {
			t.Errorf("CreateApi was sent %d times; want %d, as the SDK tries it", got, retry.DefaultMaxAttempts)
		}
		if got := g.reads.Load(); got != 0 {
			t.Errorf("the API was looked for again %d times after throttled creates; want 0", got)
		}
	})
}

// TestACtrlCWhileACreateWaitsToBeLookedForSaysItMayHaveBeenMade: a
// create sent once whose answer was lost (UnansweredCreateError) waits,
// looks for what it may have made, and sends again; a Ctrl-C during any
// of these ended the step with the bare cancellation, and socks said
// "interrupted" and nothing of the API that may now exist. It still stops
// at once, doing nothing more, and ends with the create's error, which
// says the API may have been made and to run deploy again.
func TestACtrlCWhileACreateWaitsToBeLookedForSaysItMayHaveBeenMade(t *testing.T) {
	for _, during := range []string{"the wait", "the look again", "the second send"} {
		t.Run(during, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			lost := &UnansweredCreateError{Err: errors.New("operation error ApiGatewayV2: CreateApi, https response error StatusCode: 500")}
			applies, checks := 0, 0
			// stop is the Ctrl-C: the call in flight ends with the
			// cancellation.
			stop := func(ctx context.Context) error {
				cancel()
				<-ctx.Done()
				return fmt.Errorf("operation error ApiGatewayV2: %w", ctx.Err())
			}
			def := deployStepDef{
				kind: "websocket api", name: func() string { return "prod-socks" },
				check: func(ctx context.Context) (string, []string, error) {
					checks++
					if during == "the look again" {
						return "", nil, stop(ctx)
					}
					return ActionCreate, nil, nil
				},
				apply: func(ctx context.Context, _ string) error {
					applies++
					if applies > 1 && during == "the second send" {
						return stop(ctx)
					}
					return lost
				},
			}
			d := &Deployer{Sleep: func(ctx context.Context, _ time.Duration) error {
				if during == "the wait" {
					return stop(ctx)
				}
				return nil
			}}
			err := d.applyStep(ctx, def, ActionCreate, nil)
			if !errors.Is(err, lost) || errors.Is(err, context.Canceled) {
				t.Errorf("applyStep stopped during %s = %v; want the create's error, which says the API may have been made", during, err)
			}
			if applies > 2 || checks > 1 {
				t.Errorf("after the Ctrl-C the step was applied %d times and read %d times; want nothing more", applies, checks)
			}
		})
	}
}
