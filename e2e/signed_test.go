package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		// --direct prints the counts line --wait prints (README).
		if out := s.must("publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":2}`, "--direct"); !strings.HasSuffix(out, "\ttargets=1\tdelivered=1\tgone=0\tfailed=0") {
			t.Errorf("publish --direct printed %q; want ID\ttargets=1\tdelivered=1\tgone=0\tfailed=0", out)
		}
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

// sdkScripts are the Management API calls of TestTheNodeAndPythonSDKsAreLetIn
// as the AWS SDK for JavaScript v3 and boto3 make them: post argv[3] to
// connection argv[2], then an empty message (the JavaScript SDK signs its
// "content-length: 0"), read the connection, post to an unknown one,
// delete it, each
// call also signing a header of the test's with odd case and spacing
// (what a caller's own middleware may add). Each prints one line per call.
var sdkScripts = map[string]string{
	"Node": `
import { ApiGatewayManagementApiClient, PostToConnectionCommand, GetConnectionCommand, DeleteConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
const [endpoint, id, data] = process.argv.slice(2);
const api = new ApiGatewayManagementApiClient({ endpoint, region: "eu-west-1" });
api.middlewareStack.add((next) => (args) => {
  args.request.headers["X-Socks-Test"] = "  Some   Words ";
  return next(args);
}, { step: "build" });
const calls = [
  ["post", new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(data) })],
  ["post empty", new PostToConnectionCommand({ ConnectionId: id, Data: new Uint8Array(0) })],
  ["get", new GetConnectionCommand({ ConnectionId: id })],
  ["post unknown", new PostToConnectionCommand({ ConnectionId: "nobody", Data: Buffer.from(data) })],
  ["delete", new DeleteConnectionCommand({ ConnectionId: id })],
];
for (const [name, cmd] of calls) {
  try { await api.send(cmd); console.log(name, "ok"); } catch (e) { console.log(name, e.name, e.$metadata?.httpStatusCode, e.message); }
}
`,
	"Python": `
import sys
import boto3
import botocore

endpoint, cid, data = sys.argv[1:4]
api = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, region_name="eu-west-1")


def add_header(request, **kwargs):
    request.headers["X-Socks-Test"] = "  Some   Words "


api.meta.events.register("before-sign.apigatewaymanagementapi.*", add_header)
calls = [
    ("post", lambda: api.post_to_connection(ConnectionId=cid, Data=data.encode())),
    ("post empty", lambda: api.post_to_connection(ConnectionId=cid, Data=b"")),
    ("get", lambda: api.get_connection(ConnectionId=cid)),
    ("post unknown", lambda: api.post_to_connection(ConnectionId="nobody", Data=data.encode())),
    ("delete", lambda: api.delete_connection(ConnectionId=cid)),
]
for name, call in calls:
    try:
        call()
        print(name, "ok")
    except botocore.exceptions.ClientError as e:
        meta = e.response["ResponseMetadata"]
        print(name, e.response["Error"]["Code"], meta["HTTPStatusCode"], e.response["Error"].get("Message"))
`,
}

// TestTheNodeAndPythonSDKsAreLetIn: `socks serve --require-signature`
// lets in the Management API calls of the AWS SDK for JavaScript v3 and of
// boto3 signed with the key pair `socks config` names, with the headers
// those SDKs sign (amz-sdk-invocation-id, amz-sdk-request,
// x-amz-content-sha256, x-amz-user-agent, content-type) and one of the
// caller's with odd case and spacing: the verifier's strictness about the
// Authorization header is the AWS SDK for Go's own signer's, and other
// signers write it the same.
func TestTheNodeAndPythonSDKsAreLetIn(t *testing.T) {
	t.Parallel()
	runtimes := map[string]func(*testing.T) (bin, dir string){"Node": nodeSDK, "Python": pythonSDK}
	s := newStack(t)
	srv := s.serve("--require-signature")
	mgmt := "http" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws"), "/")
	keys := filepath.Join(s.dir, "management-credentials")
	// The SDKs' own configuration: the key pair's file and profile, and
	// none of the environment's AWS variables.
	var env []string
	for _, kv := range socksEnv(t.TempDir()) {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_SHARED_CREDENTIALS_FILE="+keys, "AWS_PROFILE=socks-local", "AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "none"), "AWS_EC2_METADATA_DISABLED=true")

	for _, lang := range []string{"Node", "Python"} {
		t.Run(lang, func(t *testing.T) {
			bin, dir := runtimes[lang](t)
			ext := map[string]string{"Node": ".mjs", "Python": ".py"}[lang]
			// Inside the package folder for Node, so that the import finds node_modules.
			file := filepath.Join(dir, ".sdk-"+randomHex(4)+ext)
			if err := os.WriteFile(file, []byte(sdkScripts[lang]), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(file) })

			geek := lang + "Geek"
			conn := mustDial(t, srv.connectURL(geek, s.issue(geek), "updates"))
			defer conn.Close()
			var conns []struct {
				ID string `json:"connectionId"`
			}
			if err := json.Unmarshal([]byte(s.must("subs", "list", "--geek", geek, "--json")), &conns); err != nil || len(conns) != 1 {
				t.Fatalf("subs list --json: %v, %d connections; want 1", err, len(conns))
			}
			data := `{"from":"` + lang + `"}`
			out := runSnippet(t, env, dir, bin, file, mgmt, conns[0].ID, data)
			want := "post ok\npost empty ok\nget ok\npost unknown GoneException 410 connection is gone\ndelete ok"
			if out != want {
				t.Fatalf("the %s SDK's calls printed:\n%s\nwant:\n%s", lang, out, want)
			}
			for _, want := range []string{data, ""} {
				if got := readText(t, conn); got != want {
					t.Fatalf("the connection got %q; want %q", got, want)
				}
			}
			_ = conn.SetReadDeadline(time.Now().Add(receiveTimeout))
			if _, _, err := conn.ReadMessage(); err == nil {
				t.Fatal("the connection read another message; want it closed by the SDK's DeleteConnection")
			}
		})
	}
}
