package awsops

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/socks-dev/socks/internal/refusing"
)

// isolateAWSEnv points the SDK's config loading at empty files and clears
// every variable it reads, so LoadConfig sees only what a test sets.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, v := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
	} {
		t.Setenv(v, "")
	}
}

func TestLoadConfig(t *testing.T) {
	t.Run("no region anywhere is a clear error", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "test")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		_, err := LoadConfig(t.Context(), Settings{})
		if !errors.Is(err, ErrNoRegion) {
			t.Fatalf("LoadConfig = %v, want ErrNoRegion", err)
		}
		if !strings.Contains(err.Error(), "set --region, AWS_REGION or a profile's region") {
			t.Errorf("message %q does not say what to do", err)
		}
	})
	t.Run("no credentials anywhere is a clear error", func(t *testing.T) {
		isolateAWSEnv(t)
		_, err := LoadConfig(t.Context(), Settings{Region: "eu-west-1"})
		var nc *NoCredentialsError
		if !errors.As(err, &nc) || !strings.HasPrefix(err.Error(), "no AWS credentials found: ") {
			t.Fatalf("LoadConfig = %v, want a *NoCredentialsError", err)
		}
	})
	// On a laptop with nothing configured the SDK's chain ends at the EC2
	// instance metadata service, and its error ("failed to refresh cached
	// credentials, no EC2 IMDS role found, operation error ec2imds:
	// GetMetadata, ... dial tcp 169.254.169.254:80 ...") was appended
	// whole. The metadata service is pointed at a loopback port that refuses connections
	// here, so the probe fails as it does off EC2 without leaving the
	// machine. The user gets one line saying how to give credentials.
	t.Run("nothing configured is one line saying how to give credentials, without the metadata probe", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			env  map[string]string
		}{
			{"metadata service disabled", map[string]string{"AWS_EC2_METADATA_DISABLED": "true"}},
			{"metadata service probed and unreachable", map[string]string{"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": refusing.URL(t)}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				isolateAWSEnv(t)
				for k, v := range tc.env {
					t.Setenv(k, v)
				}
				_, err := LoadConfig(t.Context(), Settings{Region: "eu-west-1"})
				var nc *NoCredentialsError
				if !errors.As(err, &nc) {
					t.Fatalf("LoadConfig = %v, want a *NoCredentialsError", err)
				}
				msg := err.Error()
				for _, want := range []string{"no AWS credentials found", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "aws configure", "aws sso login", "--backend local"} {
					if !strings.Contains(msg, want) {
						t.Errorf("message %q does not mention %q", msg, want)
					}
				}
				for _, sdk := range []string{"IMDS", "imds", "169.254", "127.0.0.1", "failed to refresh", "GetMetadata", "\n"} {
					if strings.Contains(msg, sdk) {
						t.Errorf("message %q carries the SDK's chain (%q)", msg, sdk)
					}
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("message %q is more than one line", msg)
				}
				if nc.Err == nil {
					t.Error("the SDK's error is not kept for errors.As/Unwrap")
				}
			})
		}
	})
	// A profile with a region and nothing else: the chain fell to IMDS
	// and the message told the user to set AWS_PROFILE, which they had.
	t.Run("a named profile without credentials is named", func(t *testing.T) {
		isolateAWSEnv(t)
		cfgFile := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(cfgFile, []byte("[profile regiononly]\nregion = eu-west-1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_CONFIG_FILE", cfgFile)
		for name, s := range map[string]Settings{"by --profile": {Profile: "regiononly"}, "by AWS_PROFILE": {}} {
			if name == "by AWS_PROFILE" {
				t.Setenv("AWS_PROFILE", "regiononly")
			}
			_, err := LoadConfig(t.Context(), s)
			var nc *NoCredentialsError
			if !errors.As(err, &nc) || !strings.Contains(err.Error(), `AWS profile "regiononly" has no credentials`) || !strings.Contains(err.Error(), "--profile regiononly") || strings.Contains(err.Error(), "IMDS") {
				t.Errorf("%s: LoadConfig = %v; want one line naming the profile and how to give it credentials", name, err)
			}
		}
	})
	// A source that is configured but fails (an expired SSO session, a
	// broken credential_process) keeps the SDK's words: they name what to fix.
	t.Run("a configured source that fails keeps its cause", func(t *testing.T) {
		isolateAWSEnv(t)
		cfgFile := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(cfgFile, []byte("[profile broken]\ncredential_process = false\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_CONFIG_FILE", cfgFile)
		_, err := LoadConfig(t.Context(), Settings{Profile: "broken", Region: "eu-west-1"})
		var nc *NoCredentialsError
		if !errors.As(err, &nc) || !strings.Contains(err.Error(), `profile "broken"`) || !strings.Contains(err.Error(), "credential_process") {
			t.Fatalf("LoadConfig = %v, want a *NoCredentialsError naming the profile and its failing credential_process", err)
		}
	})
	// A region is a host label in every endpoint: one with a dot sent
	// deploy's calls to sts.us-east-1.evil.example.com.amazonaws.com, and
	// one with '/' or '#' failed later in SDK words ("failed to bind
	// endpoint params"). Refused at once, naming where it came from.
	t.Run("a region that is not a region name is refused", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "test")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		for _, region := range []string{"us-east-1.evil.example.com", "a/b", "evil#", "us east 1", "-us-east-1", strings.Repeat("a", 64)} {
			_, err := LoadConfig(t.Context(), Settings{Region: region})
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", region)) || !strings.Contains(err.Error(), "--region") {
				t.Errorf("region %q: %v; want it refused, naming it and --region", region, err)
			}
		}
		t.Setenv("AWS_REGION", "eu-west-1.example.com")
		if _, err := LoadConfig(t.Context(), Settings{}); err == nil || !strings.Contains(err.Error(), "check $AWS_REGION") {
			t.Errorf("AWS_REGION with a dot: %v; want it refused", err)
		}
		// Named as it was set, not as every place a region may come
		// from ("check --region, AWS_REGION or the profile's region").
		_, err := LoadConfig(t.Context(), Settings{Region: "a/b", RegionFrom: "$SOCKS_REGION"})
		if err == nil || !strings.Contains(err.Error(), "check $SOCKS_REGION") || strings.Contains(err.Error(), "AWS_REGION") {
			t.Errorf("from $SOCKS_REGION: %v; want it named alone", err)
		}
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "eu.west")
		if _, err := LoadConfig(t.Context(), Settings{}); err == nil || !strings.Contains(err.Error(), "check $AWS_DEFAULT_REGION") {
			t.Errorf("AWS_DEFAULT_REGION with a dot: %v; want it named", err)
		}
		t.Setenv("AWS_DEFAULT_REGION", "")
		cfgFile := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(cfgFile, []byte("[profile dotted]\nregion = eu.west-1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_CONFIG_FILE", cfgFile)
		if _, err := LoadConfig(t.Context(), Settings{Profile: "dotted"}); err == nil || !strings.Contains(err.Error(), `check the region of AWS profile "dotted" in `+cfgFile) {
			t.Errorf("a shared config profile's region with a dot: %v; want the profile and its file named", err)
		}
		for _, region := range []string{"us-gov-west-1", "cn-north-1", "eu-central-2", "local"} {
			if _, err := LoadConfig(t.Context(), Settings{Region: region}); err != nil {
				t.Errorf("region %q refused: %v", region, err)
			}
		}
	})
	t.Run("an unknown profile names the profile", func(t *testing.T) {
		isolateAWSEnv(t)
		_, err := LoadConfig(t.Context(), Settings{Profile: "no-such-profile", Region: "eu-west-1"})
		if err == nil || !strings.Contains(err.Error(), `"no-such-profile"`) {
			t.Fatalf("LoadConfig = %v, want an error naming the profile", err)
		}
	})
	t.Run("the region flag wins and clients send the socks user agent to the endpoint", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "test")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		t.Setenv("AWS_REGION", "us-west-2")
		var mu sync.Mutex
		var agents []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			agents = append(agents, r.Header.Get("User-Agent"))
			mu.Unlock()
			body := `{"TableNames":[]}`
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Header().Set("X-Amz-Crc32", fmt.Sprint(crc32.ChecksumIEEE([]byte(body))))
			fmt.Fprint(w, body)
		}))
		defer srv.Close()
		cfg, err := LoadConfig(t.Context(), Settings{Region: "eu-central-1", Version: "1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Region != "eu-central-1" {
			t.Errorf("region = %q, want the flag's", cfg.Region)
		}
		if _, ok := cfg.HTTPClient.(ownBodyClient); !ok {
			t.Errorf("HTTP client %T; want each request body the transport's own (ownBodyClient)", cfg.HTTPClient)
		}
		if _, err := NewDynamoDB(cfg, srv.URL).ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(agents) != 1 || !strings.Contains(agents[0], "socks/1.2.3") {
			t.Errorf("User-Agent = %q, want socks/1.2.3 in it (and one request to the endpoint)", agents)
		}
	})
}

// apiErr builds the error the SDK returns for an API error response.
func apiErr(op, code, msg string) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op, Err: &smithy.GenericAPIError{Code: code, Message: msg}}
}

// sendErr builds the error the SDK returns when a request cannot be sent.
func sendErr(rawURL string, err error) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessage", Err: &smithyhttp.RequestSendError{
		Err: &url.Error{Op: "Post", URL: rawURL, Err: err},
	}}
}

func TestExplain(t *testing.T) {
	notFound := &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "Query", Err: &dynamotypes.ResourceNotFoundException{Message: aws.String("Requested resource not found")}}
	noQueue := &smithy.OperationError{ServiceID: "SQS", OperationName: "GetQueueUrl", Err: &sqstypes.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}}
	plain := errors.New("something else")
	cases := []struct {
		name string
		err  error
		want string // "" means unchanged
	}{
		{"a missing table names the table and the fix",
			&ResourceError{Op: "Query", Kind: "table", Name: "prod-connections", Err: notFound},
			"table prod-connections does not exist: run `socks provision`"},
		{"a missing table without a name still says what to do", notFound, "does not exist: run `socks provision`"},
		{"a missing queue names the queue and the fix",
			&ResourceError{Op: "GetQueueUrl", Kind: "queue", Name: "prod-envelopes", Err: noQueue},
			"queue prod-envelopes does not exist: run `socks provision`"},
		{"access denied names the operation and the resource",
			&ResourceError{Op: "Query", Kind: "table", Name: "prod-connections", Err: apiErr("Query", "AccessDeniedException", "User: arn:aws:iam::1:user/x is not authorized")},
			"access denied: the credentials lack permission for Query on table prod-connections"},
		{"access denied without a resource takes the operation from the SDK error",
			apiErr("DescribeTable", "AccessDenied", "nope"),
			"access denied: the credentials lack permission for DescribeTable on the resource"},
		{"rejected credentials say so", apiErr("Query", "UnrecognizedClientException", "The security token included in the request is invalid."),
			"the AWS credentials were rejected (UnrecognizedClientException)"},
		{"expired credentials say how to refresh them", apiErr("Query", "ExpiredTokenException", "expired"),
			"the AWS credentials have expired"},
		{"a refused connection names the endpoint",
			sendErr("http://127.0.0.1:9/", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}),
			"cannot reach http://127.0.0.1:9: connect: connection refused"},
		{"a name that does not resolve names the endpoint",
			sendErr("https://sqs.nowhere.invalid/", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "sqs.nowhere.invalid", IsNotFound: true}}),
			"cannot reach https://sqs.nowhere.invalid: the name sqs.nowhere.invalid does not resolve"},
		{"a read of an index the table lacks names the index and the fix",
			&ResourceError{Op: "Query", Kind: "table", Name: "prod-connections", Index: "by-geek", Err: apiErr("Query", "ValidationException", "The table does not have the specified index: by-geek")},
			"Query on index by-geek of table prod-connections was refused (The table does not have the specified index: by-geek): the index is missing or still being built; run `socks provision` or `socks doctor`"},
		{"another API error is left alone", apiErr("Query", "ValidationException", "bad"), ""},
		{"an error that is not from AWS is left alone", plain, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Explain(tc.err)
			if tc.want == "" {
				if got != tc.err {
					t.Errorf("Explain = %v, want the error unchanged", got)
				}
				return
			}
			if !strings.Contains(got.Error(), tc.want) {
				t.Errorf("Explain = %q, want it to contain %q", got, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Error("the explained error does not wrap the original")
			}
		})
	}
	if Explain(nil) != nil {
		t.Error("Explain(nil) is not nil")
	}
	t.Run("the typed SDK error is still found through the explanation", func(t *testing.T) {
		var rnf *dynamotypes.ResourceNotFoundException
		if !errors.As(Explain(notFound), &rnf) {
			t.Error("errors.As found no *ResourceNotFoundException")
		}
	})
}

func TestExplainARealRefusedConnection(t *testing.T) {
	// A loopback port that refuses connections.
	endpoint := refusing.URL(t)
	cfg := dummyConfig()
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	api := NewDynamoDB(cfg, endpoint)
	s := NewDynamoStore(api, TablesFor("unreachable"))
	ctx, cancel := context.WithTimeout(t.Context(), 10e9)
	defer cancel()
	_, err := s.GetConnection(ctx, "c1")
	if err == nil || !strings.Contains(err.Error(), "cannot reach "+endpoint) {
		t.Errorf("GetConnection = %v, want it to say it cannot reach %s", err, endpoint)
	}
}

// TestAnEndpointOnLocalhostDotIsReached: an endpoint URL on "localhost."
// (taken as this machine's by OnThisMachine, as an emulator) is dialled
// on localhost by the clients LoadConfig's config builds, and by the
// Management API's client. Before, Go looked "localhost." up in DNS,
// found no such name, and every call failed.
func TestAnEndpointOnLocalhostDotIsReached(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		fmt.Fprint(w, `{"QueueUrl":"http://localhost./q"}`)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	endpoint := "http://localhost.:" + port
	if !OnThisMachine(endpoint) {
		t.Fatalf("OnThisMachine(%s) = false", endpoint)
	}
	cfg, err := LoadConfig(t.Context(), Settings{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSQS(cfg, endpoint).GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String("q")}); err != nil {
		t.Errorf("SQS on %s: %v", endpoint, err)
	}
	_, err = NewManagementClient(cfg, endpoint+"/stage", 1).PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("c"), Data: []byte("x")})
	if err != nil && strings.Contains(err.Error(), "no such host") {
		t.Errorf("Management API on %s: %v", endpoint, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 2 {
		t.Errorf("the server on %s got %d requests (%v), want the SQS one and the Management API one", endpoint, len(paths), paths)
	}
}
