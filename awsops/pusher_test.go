package awsops

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// fakeAPI is a ManagementAPI that records calls and returns err.
type fakeAPI struct {
	err    error
	getOut *apigatewaymanagementapi.GetConnectionOutput

	mu     sync.Mutex
	calls  []string
	posted [][]byte
}

func (f *fakeAPI) record(op string, id *string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+aws.ToString(id))
}

func (f *fakeAPI) PostToConnection(_ context.Context, in *apigatewaymanagementapi.PostToConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	f.record("PostToConnection", in.ConnectionId)
	f.mu.Lock()
	f.posted = append(f.posted, in.Data)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
}

func (f *fakeAPI) GetConnection(_ context.Context, in *apigatewaymanagementapi.GetConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error) {
	f.record("GetConnection", in.ConnectionId)
	if f.err != nil {
		return nil, f.err
	}
	if f.getOut != nil {
		return f.getOut, nil
	}
	return &apigatewaymanagementapi.GetConnectionOutput{}, nil
}

func (f *fakeAPI) DeleteConnection(_ context.Context, in *apigatewaymanagementapi.DeleteConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error) {
	f.record("DeleteConnection", in.ConnectionId)
	if f.err != nil {
		return nil, f.err
	}
	return &apigatewaymanagementapi.DeleteConnectionOutput{}, nil
}

// sdkError wraps apiErr the way the SDK returns a failed call.
func sdkError(op string, status int, apiErr error) error {
	return &smithy.OperationError{
		ServiceID:     "ApiGatewayManagementApi",
		OperationName: op,
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      apiErr,
			},
			RequestID: "request-1",
		},
	}
}

// calls runs every Pusher method on p for id and returns their errors by
// operation.
func calls(p *Pusher, id string) map[string]error {
	ctx := context.Background()
	_, getErr := p.Get(ctx, id)
	return map[string]error{
		"PostToConnection": p.Post(ctx, id, []byte("hi")),
		"GetConnection":    getErr,
		"DeleteConnection": p.Delete(ctx, id),
	}
}

func TestPusherClassifiesSDKErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		kind       store.PushErrorKind
		wantStatus int
	}{
		{"GoneException is gone", sdkError("op", 410, &types.GoneException{}), store.KindGone, 410},
		// A 410 without API Gateway's GoneException may be anything's
		// (a proxy, a custom domain mapped elsewhere): taken as gone, the
		// broker and prune-stale deleted the records of live connections.
		{"a bare 410 is other", sdkError("op", 410, &smithy.GenericAPIError{Code: "UnknownError"}), store.KindOther, 410},
		{"a 410 of another type is other", sdkError("op", 410, &smithy.GenericAPIError{Code: "NotFound"}), store.KindOther, 410},
		{"LimitExceededException is throttled", sdkError("op", 429, &types.LimitExceededException{}), store.KindThrottled, 429},
		{"a 429 of another type is throttled", sdkError("op", 429, &smithy.GenericAPIError{Code: "TooManyRequestsException"}), store.KindThrottled, 429},
		{"PayloadTooLargeException is too large", sdkError("op", 413, &types.PayloadTooLargeException{}), store.KindTooLarge, 413},
		{"ForbiddenException is forbidden", sdkError("op", 403, &types.ForbiddenException{}), store.KindForbidden, 403},
		{"a 403 of another type is forbidden", sdkError("op", 403, &smithy.GenericAPIError{Code: "MissingAuthenticationTokenException"}), store.KindForbidden, 403},
		{"a 400 refuses the connection ID: it can never be reached", sdkError("op", 400, &smithy.GenericAPIError{Code: "BadRequestException", Message: "Invalid connectionId: x"}), store.KindInvalidID, 400},
		// A 400 says only that the request was refused: the connection
		// may be live (a body the server could not read, a signature it
		// could not parse, a proxy's answer). Taken as gone, the broker
		// deleted the record of every connection it posted to.
		{"a BadRequestException about another thing is other", sdkError("op", 400, &smithy.GenericAPIError{Code: "BadRequestException", Message: "could not read the request body"}), store.KindOther, 400},
		{"a 400 of another type is other", sdkError("op", 400, &smithy.GenericAPIError{Code: "IncompleteSignatureException", Message: "Invalid connectionId"}), store.KindOther, 400},
		{"a bare 400 is other", sdkError("op", 400, &smithy.GenericAPIError{Code: "UnknownError"}), store.KindOther, 400},
		{"a 500 is other", sdkError("op", 500, &smithy.GenericAPIError{Code: "InternalServerError"}), store.KindOther, 500},
		{"a cancelled context is other", context.Canceled, store.KindOther, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPusher(&fakeAPI{err: tc.err})
			for op, err := range calls(p, "conn-1") {
				var pe *store.PushError
				if !errors.As(err, &pe) {
					t.Fatalf("%s: %v (%T), want *store.PushError", op, err, err)
				}
				if pe.Kind != tc.kind || pe.Status != tc.wantStatus || pe.Op != op || pe.ConnectionID != "conn-1" {
					t.Errorf("%s: %+v, want kind %v status %d", op, pe, tc.kind, tc.wantStatus)
				}
				if !errors.Is(err, tc.err) {
					t.Errorf("%s: the SDK error is not wrapped: %v", op, err)
				}
			}
		})
	}
}

func TestPusherSucceeds(t *testing.T) {
	connected := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	api := &fakeAPI{getOut: &apigatewaymanagementapi.GetConnectionOutput{
		ConnectedAt:  aws.Time(connected),
		LastActiveAt: aws.Time(connected.Add(time.Minute)),
		Identity:     &types.Identity{SourceIp: aws.String("192.0.2.1"), UserAgent: aws.String("Mozilla")},
	}}
	p := NewPusher(api)
	for op, err := range calls(p, "conn-1") {
		if err != nil {
			t.Errorf("%s: %v", op, err)
		}
	}
	info, _ := p.Get(context.Background(), "conn-1")
	want := store.ConnectionInfo{ConnectedAt: connected, LastActiveAt: connected.Add(time.Minute), SourceIP: "192.0.2.1", UserAgent: "Mozilla"}
	if info != want {
		t.Errorf("Get = %+v, want %+v", info, want)
	}
	if err := p.Post(context.Background(), "conn-1", nil); err != nil {
		t.Errorf("Post of nil data: %v", err)
	}
	if last := api.posted[len(api.posted)-1]; last == nil {
		t.Error("nil data reached the SDK, which rejects a missing Data")
	}
}

func TestPusherRefusesAMessageOverTheLimitWithoutACall(t *testing.T) {
	api := &fakeAPI{}
	err := NewPusher(api).Post(context.Background(), "conn-1", make([]byte, pubsub.MaxMessageBytes+1))
	if store.PushErrorKindOf(err) != store.KindTooLarge {
		t.Fatalf("Post = %v, want too large", err)
	}
	if len(api.calls) != 0 {
		t.Errorf("calls %v, want none", api.calls)
	}
}

// managementServer answers every Management API call with status and, for
// errors, the given X-Amzn-ErrorType; it records the requests.
type managementServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func newManagementServer(t *testing.T, status int, errorType, body string) *managementServer {
	t.Helper()
	s := &managementServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, r)
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		if errorType != "" {
			w.Header().Set("X-Amzn-ErrorType", errorType)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestA410ThatIsNotAPIGatewaysSaysWhyTheConnectionIsKept: a 410 from
// something other than API Gateway (a proxy's page) is no proof that the
// connection is gone; its error says so, and where to look.
func TestA410ThatIsNotAPIGatewaysSaysWhyTheConnectionIsKept(t *testing.T) {
	srv := newManagementServer(t, 410, "", `<html><body>Gone</body></html>`)
	p := NewPusher(NewManagementClient(LocalConfig(), srv.URL+"/dev", 2))
	err := p.Post(t.Context(), "L0SM9cOFvHcCIhw=", []byte("hi"))
	if store.PushErrorKindOf(err) == store.KindGone {
		t.Fatalf("a 410 without GoneException: %v; want it not taken for gone", err)
	}
	for _, says := range []string{"HTTP 410", "without API Gateway's GoneException", "callback URL"} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("%q does not say %q", err, says)
		}
	}
}

func TestTheSDKClientMapsWireErrorsToKinds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		errorType string
		body      string
		kind      store.PushErrorKind
		says      string // what the error says to do, as docs/deploy.md promises
	}{
		{"410 GoneException", 410, "GoneException", `{"message":"gone"}`, store.KindGone, ""},
		{"410 typed in the body", 410, "", `{"__type":"GoneException"}`, store.KindGone, ""},
		{"410 from a server that is not API Gateway", 410, "", `<html><body>Gone</body></html>`, store.KindOther, ""},
		{"410 of another type", 410, "NotFoundException", `{"message":"no such route"}`, store.KindOther, ""},
		{"429 LimitExceededException", 429, "LimitExceededException", `{"message":"slow down"}`, store.KindThrottled, ""},
		{"429 TooManyRequestsException", 429, "TooManyRequestsException", `{"message":"Too Many Requests"}`, store.KindThrottled, ""},
		{"413 PayloadTooLargeException", 413, "PayloadTooLargeException", `{"message":"too long"}`, store.KindTooLarge, "API Gateway delivers at most 128 KB per message"},
		{"403 ForbiddenException", 403, "ForbiddenException", `{"message":"Forbidden"}`, store.KindForbidden, "check that the endpoint includes the stage and that the role has execute-api:ManageConnections"},
		{"403 MissingAuthenticationTokenException", 403, "MissingAuthenticationTokenException", `{"message":"Missing Authentication Token"}`, store.KindForbidden, "check that the endpoint includes the stage and that the role has execute-api:ManageConnections"},
		{"400 BadRequestException", 400, "BadRequestException", `{"message":"Invalid connectionId: L0SM9cOFvHcCIhw="}`, store.KindInvalidID, "API Gateway issues no such ID"},
		{"400 BadRequestException, in lower case", 400, "BadRequestException", `{"message":"invalid connectionid"}`, store.KindInvalidID, ""},
		{"400 BadRequestException about the body", 400, "BadRequestException", `{"message":"could not read the request body"}`, store.KindOther, ""},
		{"400 IncompleteSignatureException", 400, "IncompleteSignatureException", `{"message":"Authorization header requires 'Credential' parameter."}`, store.KindOther, ""},
		{"400 SerializationException", 400, "SerializationException", `{"message":"Start of structure or map found where not expected."}`, store.KindOther, ""},
		{"400 from a server that is not API Gateway", 400, "", `Bad Request`, store.KindOther, ""},
		{"500", 500, "", `{"message":"Internal server error"}`, store.KindOther, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newManagementServer(t, tc.status, tc.errorType, tc.body)
			p := NewPusher(NewManagementClient(LocalConfig(), srv.URL+"/dev", 2))
			for op, err := range calls(p, "L0SM9cOFvHcCIhw=") {
				var pe *store.PushError
				if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Status != tc.status {
					t.Errorf("%s: %v, want kind %v status %d", op, err, tc.kind, tc.status)
				}
				if err != nil && !strings.Contains(err.Error(), tc.says) {
					t.Errorf("%s: %v; want it to say %q", op, err, tc.says)
				}
			}
			// No SDK retries, throttling included: the broker owns them.
			if n := len(srv.requests); n != 3 {
				t.Errorf("%d requests for 3 calls, want no retries", n)
			}
		})
	}
}

func TestTheSDKClientCallsTheEndpointWithSignedRequests(t *testing.T) {
	srv := newManagementServer(t, 200, "", `{"connectedAt":"2026-01-02T03:04:05.678Z","identity":{"sourceIp":"127.0.0.1","userAgent":"ua"},"lastActiveAt":"2026-01-02T03:05:00.000Z"}`)
	p := NewPusher(NewManagementClient(LocalConfig(), srv.URL+"/dev", 2))
	ctx := context.Background()
	if err := p.Post(ctx, "L0SM9cOFvHcCIhw=", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	info, err := p.Get(ctx, "L0SM9cOFvHcCIhw=")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC); !info.ConnectedAt.Equal(want) || info.SourceIP != "127.0.0.1" || info.UserAgent != "ua" {
		t.Errorf("Get = %+v", info)
	}
	for i, want := range []string{"POST", "GET"} {
		r := srv.requests[i]
		if r.Method != want || r.URL.EscapedPath() != "/dev/@connections/L0SM9cOFvHcCIhw%3D" {
			t.Errorf("request %d: %s %s", i, r.Method, r.URL.EscapedPath())
		}
		if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=local/") {
			t.Errorf("request %d: Authorization %q, want SigV4 with the local credentials", i, auth)
		}
	}
	if srv.bodies[0] != `{"n":1}` {
		t.Errorf("posted %q", srv.bodies[0])
	}
}

func TestNewManagementClientSizesItsConnectionPool(t *testing.T) {
	c := NewManagementClient(LocalConfig(), "http://127.0.0.1:1", 37)
	o := c.Options()
	bc, ok := o.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client %T", o.HTTPClient)
	}
	tr := bc.GetTransport()
	if tr.MaxIdleConnsPerHost != 37 || tr.MaxConnsPerHost != 37 || tr.MaxIdleConns < 37 {
		t.Errorf("transport pool %d/%d/%d, want 37", tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost, tr.MaxIdleConns)
	}
	if o.RetryMaxAttempts != 1 || aws.ToString(o.BaseEndpoint) != "http://127.0.0.1:1" {
		t.Errorf("options: retries %d, endpoint %q", o.RetryMaxAttempts, aws.ToString(o.BaseEndpoint))
	}
}

func TestLocalConfigUsesStaticDummyCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "from-env")
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg := LocalConfig()
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "local" || creds.SecretAccessKey != "local" || cfg.Region != "us-east-1" {
		t.Errorf("credentials %s/%s region %s", creds.AccessKeyID, creds.SecretAccessKey, cfg.Region)
	}
}
