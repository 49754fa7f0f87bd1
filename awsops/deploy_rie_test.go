package awsops

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/store"
)

// TestDeployedZipServesEveryEventUnderTheRIE deploys to moto, checks that
// the package moto holds is byte for byte the one deploy built (moto keeps
// no download URL for a zip upload, so its CodeSha256 and CodeSize, which
// it computes from the bytes it received, are compared), and runs that
// package's bootstrap under AWS's Runtime Interface Emulator with the store
// on DynamoDB Local and the Management API on a loopback server. The one
// function, built once, then serves the recorded event of every WebSocket
// route and an SQS batch, in order: $connect with the chatter ID in the
// query string and in Sec-WebSocket-Protocol (answered with the "socks"
// subprotocol and no ID), a refused $connect (403, nothing recorded),
// subscribe, unsubscribe, ping, $default, the batch (partial batch
// failures name exactly the record whose only delivery failed), and
// $disconnect; each store effect is read back from DynamoDB Local.
func TestDeployedZipServesEveryEventUnderTheRIE(t *testing.T) {
	t.Parallel()
	cp := motoPlane(t)
	emulatortest.RIEPath(t)
	dynamoURL := emulatortest.DynamoDB(t)
	zipped := testZip(t)
	stack := uniqueName("rie")
	d := testDeployer(t, cp, stack, zipped)
	deploy(t, d, false)
	t.Cleanup(func() {
		if steps, err := d.Deployed(cleanupContext(t)); err == nil {
			_ = d.Undeploy(cleanupContext(t), steps)
		}
	})
	fn, err := cp.Lambda.GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(fn.Configuration.CodeSha256); got != CodeSHA256(zipped) || fn.Configuration.CodeSize != int64(len(zipped)) {
		t.Fatalf("moto holds code %s (%d bytes), not the package deploy built (%s, %d bytes)", got, fn.Configuration.CodeSize, CodeSHA256(zipped), len(zipped))
	}

	// Unpack the package as Lambda does and run its bootstrap.
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode()&0o111 == 0 {
		t.Fatalf("package holds %v, want one executable bootstrap", zr.File)
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	task := t.TempDir()
	bootstrap := filepath.Join(task, "bootstrap")
	if err := os.WriteFile(bootstrap, raw, 0o755); err != nil {
		t.Fatal(err)
	}

	// The store on DynamoDB Local, with a chatter ID for the $connect.
	db := NewDynamoDB(dummyConfig(), dynamoURL)
	tables := d.Spec.Tables()
	if _, err := EnsureTables(t.Context(), db, tables, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteTables(cleanupContext(t), db, tables, time.Minute) })
	st := NewDynamoStore(db, tables)
	secret, _, err := store.IssueChatterID(t.Context(), st, "Friendless", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// The Management API: a post to the query-string connection is
	// delivered, one to the header connection fails (500, every try).
	var mu sync.Mutex
	posts := map[string]int{}
	mgmt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if u, err := url.PathUnescape(id); err == nil {
			id = u
		}
		mu.Lock()
		posts[id]++
		mu.Unlock()
		if r.Method == http.MethodPost && id == rieQueryConn {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, `{"message":"Internal server error"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(mgmt.Close)

	env := []string{"PATH=/usr/bin:/bin", "HOME=" + task, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"SOCKS_DYNAMODB_ENDPOINT_URL=" + dynamoURL,
		// Refusing: the failing record's follow-up cannot be handed on,
		// so the record is left on the queue (its batchItemFailure).
		"SOCKS_SQS_ENDPOINT_URL=" + refusing.URL(t),
	}
	// The function's own environment as deployed.
	for k, v := range fn.Configuration.Environment.Variables {
		if k == "SOCKS_CALLBACK_URL" {
			v = mgmt.URL + "/prod"
		}
		env = append(env, k+"="+v)
	}
	r := emulatortest.StartRIE(t, bootstrap, env)
	invoke := func(t *testing.T, payload []byte, out any) {
		t.Helper()
		body, err := r.Invoke(t.Context(), payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("the function answered %s (%v)\noutput: %s", body, err, r.Output())
		}
	}
	ws := func(t *testing.T, ev map[string]any) events.APIGatewayProxyResponse {
		t.Helper()
		var resp events.APIGatewayProxyResponse
		invoke(t, marshal(t, ev), &resp)
		return resp
	}
	topicsOf := func(t *testing.T, id string) []string {
		t.Helper()
		c, err := st.GetConnection(t.Context(), id)
		if err != nil {
			t.Fatalf("connection %s: %v\noutput: %s", id, err, r.Output())
		}
		return slices.Sorted(slices.Values(c.Topics))
	}

	t.Run("$connect with the ID in the query string", func(t *testing.T) {
		resp := ws(t, rieEvent(t, "connect.json", secret))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("$connect answered %+v\noutput: %s", resp, r.Output())
		}
		c, err := st.GetConnection(t.Context(), rieQueryConn)
		if err != nil || c.Geek != "Friendless" {
			t.Fatalf("connection after $connect: %+v, %v", c, err)
		}
		if got := topicsOf(t, rieQueryConn); !slices.Equal(got, []string{"news", "updates"}) {
			t.Errorf("topics after $connect: %v", got)
		}
	})
	t.Run("$connect with the ID in Sec-WebSocket-Protocol", func(t *testing.T) {
		resp := ws(t, rieEvent(t, "connect-header.json", secret))
		if resp.StatusCode != http.StatusOK || resp.Headers["Sec-WebSocket-Protocol"] != "socks" {
			t.Fatalf("$connect answered %+v, want 200 with Sec-WebSocket-Protocol: socks\noutput: %s", resp, r.Output())
		}
		if raw := marshal(t, resp); strings.Contains(string(raw), secret) {
			t.Errorf("the response carries the chatter ID: %s", raw)
		}
		c, err := st.GetConnection(t.Context(), rieHeaderConn)
		if err != nil || c.Geek != "Friendless" {
			t.Fatalf("connection after $connect: %+v, %v", c, err)
		}
		if got := topicsOf(t, rieHeaderConn); !slices.Equal(got, []string{"news", "updates"}) {
			t.Errorf("topics after $connect: %v", got)
		}
	})
	t.Run("$connect with a refused ID", func(t *testing.T) {
		ev := rieEvent(t, "connect.json", "sc_not-issued-by-anyone-0000000000")
		ev["requestContext"].(map[string]any)["connectionId"] = "rieRefusedConn="
		resp := ws(t, ev)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "chatter ID refused") {
			t.Fatalf("$connect answered %+v, want 403 (chatter ID refused)\noutput: %s", resp, r.Output())
		}
		if c, err := st.GetConnection(t.Context(), "rieRefusedConn="); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused $connect recorded %+v, %v", c, err)
		}
	})
	t.Run("subscribe", func(t *testing.T) {
		resp := ws(t, rieEvent(t, "subscribe.json", secret))
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"type":"subscribed"`) {
			t.Fatalf("subscribe answered %+v\noutput: %s", resp, r.Output())
		}
		if got := topicsOf(t, rieQueryConn); !slices.Equal(got, []string{"news", "plays", "updates"}) {
			t.Errorf("topics after subscribe: %v", got)
		}
	})
	t.Run("unsubscribe", func(t *testing.T) {
		ev := rieEvent(t, "subscribe.json", secret)
		ev["requestContext"].(map[string]any)["routeKey"] = "unsubscribe"
		ev["body"] = `{"action":"unsubscribe","topics":["news"]}`
		resp := ws(t, ev)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"type":"unsubscribed"`) {
			t.Fatalf("unsubscribe answered %+v\noutput: %s", resp, r.Output())
		}
		if got := topicsOf(t, rieQueryConn); !slices.Equal(got, []string{"plays", "updates"}) {
			t.Errorf("topics after unsubscribe: %v", got)
		}
	})
	t.Run("ping", func(t *testing.T) {
		ev := rieEvent(t, "default.json", secret)
		ev["requestContext"].(map[string]any)["routeKey"] = "ping"
		ev["body"] = `{"action":"ping"}`
		resp := ws(t, ev)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"type":"pong"`) {
			t.Fatalf("ping answered %+v\noutput: %s", resp, r.Output())
		}
	})
	t.Run("events it does not serve are invocation errors, and it serves on", func(t *testing.T) {
		for _, payload := range []string{
			`hello`,
			`{}`,
			`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`,
			`{"Records":[{"eventSource":"aws:sns","Sns":{"Message":"{}"}}]}`,
			`{"junk":"` + strings.Repeat("x", 1<<20) + `"}`,
		} {
			body, err := r.Invoke(t.Context(), []byte(payload))
			if err != nil || !strings.Contains(string(body), "unsupported event") {
				t.Errorf("%.40s... answered %s, %v; want an unsupported event error\noutput: %s", payload, body, err, r.Output())
			}
		}
		ev := rieEvent(t, "default.json", secret)
		ev["requestContext"].(map[string]any)["routeKey"] = "ping"
		ev["body"] = `{"action":"ping"}`
		if resp := ws(t, ev); resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"type":"pong"`) {
			t.Fatalf("ping after them answered %+v\noutput: %s", resp, r.Output())
		}
	})
	t.Run("$default", func(t *testing.T) {
		resp := ws(t, rieEvent(t, "default.json", secret))
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"type":"error"`) || !strings.Contains(resp.Body, "sendmessage") {
			t.Fatalf("$default answered %+v\noutput: %s", resp, r.Output())
		}
		if got := topicsOf(t, rieQueryConn); !slices.Equal(got, []string{"plays", "updates"}) {
			t.Errorf("topics after $default: %v", got)
		}
	})
	t.Run("SQS batch with a failing record", func(t *testing.T) {
		// The recorded batch's delivered, retried and nobody records,
		// addressed by topic: "plays" reaches only the query-string
		// connection (delivered), "news" only the header connection (its
		// one delivery fails), "quiet" nobody.
		var batch struct{ Records []map[string]any }
		if err := json.Unmarshal(readLambdaEvent(t, "sqs-batch.json"), &batch); err != nil {
			t.Fatal(err)
		}
		pick := func(i int, id, topic string) map[string]any {
			rec := batch.Records[i]
			rec["body"] = `{"id":"` + id + `","topics":["` + topic + `"],"body":{"n":1}}`
			// From the stack's queue, as its event source mapping's are:
			// the function leaves another queue's records to it.
			rec["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:" + QueuesFor(stack).Main
			return rec
		}
		failing := pick(2, "m-rie-fails", "news")
		ev := map[string]any{"Records": []map[string]any{
			pick(0, "m-rie-delivered", "plays"), failing, pick(5, "m-rie-nobody", "quiet"),
		}}
		var resp events.SQSEventResponse
		invoke(t, marshal(t, ev), &resp)
		want := []events.SQSBatchItemFailure{{ItemIdentifier: failing["messageId"].(string)}}
		if !slices.Equal(resp.BatchItemFailures, want) {
			t.Fatalf("batchItemFailures = %+v, want %+v\noutput: %s", resp.BatchItemFailures, want, r.Output())
		}
		mu.Lock()
		defer mu.Unlock()
		if posts[rieQueryConn] != 1 || posts[rieHeaderConn] == 0 {
			t.Errorf("posts to the Management API: %v, want one to %s and tries to %s", posts, rieQueryConn, rieHeaderConn)
		}
	})
	t.Run("$disconnect", func(t *testing.T) {
		resp := ws(t, rieEvent(t, "disconnect.json", secret))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("$disconnect answered %+v\noutput: %s", resp, r.Output())
		}
		if c, err := st.GetConnection(t.Context(), rieQueryConn); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("connection after $disconnect: %+v, %v", c, err)
		}
		if _, err := st.GetConnection(t.Context(), rieHeaderConn); err != nil {
			t.Errorf("the other connection after $disconnect: %v", err)
		}
	})
}

// The connection IDs of the recorded $connect events.
const (
	rieQueryConn  = "Fq2mXeTBDoECFyA="
	rieHeaderConn = "Fq2mYHdODoECJ-w="
)

func readLambdaEvent(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "lambda", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// rieEvent is a recorded WebSocket event with the fixture chatter ID
// replaced by secret and the connection made now (a connection's record
// lives from connectedAt).
func rieEvent(t *testing.T, name, secret string) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(readLambdaEvent(t, name)), "sc_RECORDED-FIXTURE-not-a-real-secret", secret)), &ev); err != nil {
		t.Fatal(err)
	}
	ev["requestContext"].(map[string]any)["connectedAt"] = time.Now().UnixMilli()
	return ev
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
