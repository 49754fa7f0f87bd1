package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
)

// TestAGatewayThatRequiresSignaturesRefusesUnsignedPushes runs `socks
// serve --require-signature` (what a non-loopback address implies) and
// pushes to it as socks itself, as the AWS SDK with the key pair `socks
// config` names, and as anyone else.
func TestAGatewayThatRequiresSignaturesRefusesUnsignedPushes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve("--require-signature")
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
	mgmt := "http" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws"), "/")

	t.Run("the broker and socks commands sign with the key pair", func(t *testing.T) {
		if rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":1}`); rep.Report.Delivered != 1 {
			t.Fatalf("publish --wait reported %s; want delivered=1", rep)
		}
		if got := readText(t, conn); got != `{"n":1}` {
			t.Fatalf("alice got %q", got)
		}
		s.must("publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":2}`, "--direct")
		if got := readText(t, conn); got != `{"n":2}` {
			t.Fatalf("alice got %q after publish --direct", got)
		}
	})

	var cfgOut struct {
		GatewayKeys struct {
			File    string `json:"file"`
			Profile string `json:"profile"`
			Exists  bool   `json:"exists"`
			Use     string `json:"use"`
		} `json:"gatewayKeys"`
	}
	r := s.run("config", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &cfgOut); err != nil || !cfgOut.GatewayKeys.Exists ||
		!strings.Contains(cfgOut.GatewayKeys.Use, "AWS_SHARED_CREDENTIALS_FILE="+cfgOut.GatewayKeys.File) ||
		filepath.Dir(cfgOut.GatewayKeys.File) != s.dir {
		t.Fatalf("socks config --json: %v\n%s", err, r)
	}

	t.Run("the AWS SDK with the key pair socks config names is let in", func(t *testing.T) {
		// The SDK's own reader of shared credentials files (what
		// AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE select), without the
		// environment's own AWS variables.
		shared, err := awsconfig.LoadSharedConfigProfile(t.Context(), cfgOut.GatewayKeys.Profile, func(o *awsconfig.LoadSharedConfigOptions) {
			o.CredentialsFiles = []string{cfgOut.GatewayKeys.File}
			o.ConfigFiles = []string{}
		})
		if err != nil || shared.Credentials.SecretAccessKey == "" {
			t.Fatalf("reading %s: %v", cfgOut.GatewayKeys.File, err)
		}
		if strings.Contains(r.stdout, shared.Credentials.SecretAccessKey) {
			t.Error("socks config prints the secret key")
		}
		api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			Region:       "eu-west-1",
			BaseEndpoint: aws.String(mgmt),
			Credentials:  credentials.StaticCredentialsProvider{Value: shared.Credentials},
		})
		// An unknown connection: a signature that passes reaches the
		// lookup and gets 410.
		_, err = api.PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("nobody"), Data: []byte("x")})
		var gone *types.GoneException
		if !errors.As(err, &gone) {
			t.Errorf("a signed post to an unknown connection: %v; want GoneException", err)
		}
	})

	t.Run("unsigned or wrongly signed calls get 403", func(t *testing.T) {
		for _, auth := range []string{"", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00", "Bearer x"} {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, mgmt+"/@connections/"+url.PathEscape("nobody"), bytes.NewReader([]byte("x")))
			if err != nil {
				t.Fatal(err)
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("Authorization %q: status %d; want 403", auth, resp.StatusCode)
			}
		}
	})
}
