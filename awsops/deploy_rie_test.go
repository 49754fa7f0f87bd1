package awsops

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/store"
)

// TestDeployedZipAnswersConnectUnderTheRIE deploys to moto, checks that
// the package moto holds is byte for byte the one deploy built (moto keeps
// no download URL for a zip upload, so its CodeSha256 and CodeSize, which
// it computes from the bytes it received, are compared), and runs that
// package's bootstrap under AWS's Runtime Interface Emulator with the store
// on DynamoDB Local, where it answers a recorded $connect and records the
// connection.
func TestDeployedZipAnswersConnectUnderTheRIE(t *testing.T) {
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

	env := []string{"PATH=/usr/bin:/bin", "HOME=" + task, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"SOCKS_DYNAMODB_ENDPOINT_URL=" + dynamoURL,
		"SOCKS_SQS_ENDPOINT_URL=http://127.0.0.1:9",
	}
	// The function's own environment as deployed.
	for k, v := range fn.Configuration.Environment.Variables {
		if k == "SOCKS_CALLBACK_URL" {
			v = "http://127.0.0.1:9" // the callback is not called by $connect
		}
		env = append(env, k+"="+v)
	}
	r := emulatortest.StartRIE(t, bootstrap, env)

	rawEvent, err := os.ReadFile(filepath.Join("..", "testdata", "lambda", "connect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(rawEvent), "sc_RECORDED-FIXTURE-not-a-real-secret", secret)), &ev); err != nil {
		t.Fatal(err)
	}
	ev["requestContext"].(map[string]any)["connectedAt"] = time.Now().UnixMilli()
	payload, _ := json.Marshal(ev)
	body, err := r.Invoke(t.Context(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"statusCode":200`) {
		t.Fatalf("$connect answered %s\noutput: %s", body, r.Output())
	}
	c, err := st.GetConnection(t.Context(), "Fq2mXeTBDoECFyA=")
	if err != nil || c.Geek != "Friendless" {
		t.Errorf("connection after $connect: %+v, %v\noutput: %s", c, err, r.Output())
	}
}
