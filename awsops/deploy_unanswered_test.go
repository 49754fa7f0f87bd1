package awsops

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// unanswered is an HTTP client that sends the first request of each
// create it is told of to the server, which makes what it asks for, and
// then gives the SDK a failure in place of the answer (a 500, or a reset
// connection): what the SDK's standard retryer tries again.
type unanswered struct {
	next aws.HTTPClient
	// fail is the failure in place of the answer: "500" or "reset".
	fail string
	// creates says whether a request is one of the creates.
	creates func(*http.Request) (string, bool)
	// never: no create reaches the server, each one fails so.
	never bool
	mu    sync.Mutex
	done  map[string]bool
	sent  map[string]int
}

func (u *unanswered) Do(req *http.Request) (*http.Response, error) {
	op, ok := u.creates(req)
	if ok && u.never {
		u.mu.Lock()
		u.sent[op]++
		u.mu.Unlock()
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	resp, err := u.next.Do(req)
	if err != nil || !ok {
		return resp, err
	}
	u.mu.Lock()
	first := !u.done[op]
	u.done[op] = true
	u.mu.Unlock()
	if !first {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if u.fail == "reset" {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return &http.Response{
		StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error",
		Header:  http.Header{"Content-Type": {"application/json"}, "X-Amzn-Errortype": {"InternalServerErrorException"}},
		Body:    io.NopCloser(strings.NewReader(`{"message":"Internal server error (injected)"}`)),
		Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}, nil
}

// apiGatewayCreates are the creates of API Gateway whose resources have
// no name of their own that a second create would collide with:
// CreateApi (POST /v2/apis) and CreateIntegration (POST
// /v2/apis/ID/integrations).
func apiGatewayCreates(req *http.Request) (string, bool) {
	if req.Method != http.MethodPost {
		return "", false
	}
	switch p := strings.TrimSuffix(req.URL.Path, "/"); {
	case p == "/v2/apis":
		return "CreateApi", true
	case strings.HasPrefix(p, "/v2/apis/") && strings.HasSuffix(p, "/integrations"):
		return "CreateIntegration", true
	}
	return "", false
}

// TestACreateWhoseAnswerIsLostIsNotMadeTwice: the SDK's retryer sent
// CreateApi and CreateIntegration again after a 500 or a reset
// connection whose request the server had done, and the stack was left
// with two APIs (which the next deploy refused) or two integrations.
// Deploy now sends those creates once, reads the step again after such a
// failure and takes what the first one made: one API, one integration,
// and nothing left for the next deploy to do.
func TestACreateWhoseAnswerIsLostIsNotMadeTwice(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	zip := shellZip(t)
	for _, fail := range []string{"500", "reset"} {
		t.Run("after a "+fail, func(t *testing.T) {
			t.Parallel()
			u := &unanswered{next: awshttp.NewBuildableClient(), fail: fail, creates: apiGatewayCreates, done: map[string]bool{}, sent: map[string]int{}}
			c := cfg.Copy()
			c.HTTPClient = u
			cp := NewControlPlane(c, Endpoints{All: moto})
			stack := uniqueName("lost")
			d := testDeployer(t, cp, stack, zip)
			removeStackAtCleanup(t, motoPlane(t), d)
			res, err := d.Deploy(t.Context(), false)
			removeAllStackAPIsAtCleanup(t, stack)
			if err != nil {
				t.Fatalf("deploy with the answers of its creates lost: %v", err)
			}
			for _, op := range []string{"CreateApi", "CreateIntegration"} {
				if !u.done[op] {
					t.Errorf("the answer of %s was never lost", op)
				}
			}
			checkOnlyOnce(t, motoPlane(t), res)
			if got := changed(deploy(t, testDeployer(t, motoPlane(t), stack, zip), true)); len(got) != 0 {
				t.Errorf("after the deploy: %v", got)
			}
		})
	}
}

// removeAllStackAPIsAtCleanup deletes every API tagged with stack when the
// test ends, the second one of a create made twice included.
func removeAllStackAPIsAtCleanup(t *testing.T, stack string) {
	t.Cleanup(func() {
		cp := motoPlane(t)
		ctx := cleanupContext(t)
		apis, err := StackAPIs(ctx, cp.APIGW, stack)
		if err != nil {
			return
		}
		for _, a := range apis {
			_, _ = cp.APIGW.DeleteApi(ctx, &apigatewayv2.DeleteApiInput{ApiId: a.ApiId})
		}
	})
}

// TestACreateThatNeverGetsAnAnswerIsSentThriceThenDeployAsksForARerun:
// a CreateApi that fails every time as above, without reaching the
// server, is read again and sent again as often as the SDK would have
// tried it (retry.DefaultMaxAttempts), and then deploy fails saying to
// run it again, which takes what was made.
func TestACreateThatNeverGetsAnAnswerIsSentThriceThenDeployAsksForARerun(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	u := &unanswered{next: awshttp.NewBuildableClient(), never: true, creates: apiGatewayCreates, done: map[string]bool{}, sent: map[string]int{}}
	c := cfg.Copy()
	c.HTTPClient = u
	cp := NewControlPlane(c, Endpoints{All: moto})
	stack := uniqueName("never")
	d := testDeployer(t, cp, stack, shellZip(t))
	removeStackAtCleanup(t, motoPlane(t), d)
	_, err := d.Deploy(t.Context(), false)
	var lost *UnansweredCreateError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "run socks deploy again") {
		t.Fatalf("deploy whose CreateApi never got an answer: %v; want an UnansweredCreateError saying to deploy again", err)
	}
	if got := u.sent["CreateApi"]; got != retry.DefaultMaxAttempts {
		t.Errorf("CreateApi was sent %d times; want %d", got, retry.DefaultMaxAttempts)
	}
	if apis, err := StackAPIs(t.Context(), motoPlane(t).APIGW, stack); err != nil || len(apis) != 0 {
		t.Errorf("the stack's APIs: %v, %v; want none", apis, err)
	}
}
