package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/jsondoc"
)

// TestAWSJSONOutputIsAsDocumented runs the AWS operator commands of
// docs/json.md (the sections with `--backend aws` in their heading:
// provision, deploy, teardown) and `doctor --backend aws` on moto, in
// their successful and their failing shapes that moto can make (each
// failing before it reads anything, where nothing listens; provision
// refusing for drift, with a repair; teardown's dry run; teardown
// refusing for a table of another stack, also in a dry run; teardown
// stopped by a table it may not delete), and
// checks each output against the page both ways, as
// TestJSONOutputIsAsDocumented does for the local commands. Then every
// field the page shows must have been seen in some output, but those named
// below, which moto cannot make (their shapes are checked by the commands'
// own tests, with an injected error).
func TestAWSJSONOutputIsAsDocumented(t *testing.T) {
	t.Parallel()
	moto := emulatortest.Moto(t)
	docs, err := jsondoc.Read()
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]jsondoc.Section{}
	for _, d := range docs {
		if isAWSSection(d) {
			sections[strings.Fields(d.Command)[1]] = d
		}
	}
	for _, c := range []string{"provision", "deploy", "teardown"} {
		if _, ok := sections[c]; !ok {
			t.Errorf("docs/json.md has no section for socks %s --backend aws ... --json", c)
		}
	}
	doctor, err := jsondoc.Find("socks doctor --json")
	if err != nil {
		t.Fatal(err)
	}
	sections["doctor"] = doctor
	if t.Failed() {
		t.FailNow()
	}

	s := &awsStack{t: t, env: awsEnv(t, map[string]string{"SOCKS_ENDPOINT_URL": moto}), name: uniqueStack("jsondoc")}
	t.Cleanup(func() { s.cleanup("teardown", "--yes") })
	db, sq := awsops.NewDynamoDB(awsConfig(), moto), awsops.NewSQS(awsConfig(), moto)
	tables, queues := awsops.TablesFor(s.name), awsops.QueuesFor(s.name)
	zipFile := filepath.Join(t.TempDir(), "socks-lambda.zip")
	pkg, err := awsops.LambdaZip([]byte("#!/bin/sh\n")) // uploaded, never run
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zipFile, pkg, 0o644); err != nil {
		t.Fatal(err)
	}

	outputs := map[string][]string{}
	// run runs the section of command (its heading's arguments, then
	// extra), wants exit code, checks stdout against the section and
	// returns it decoded.
	runIn := func(env []string, command string, code int, extra ...string) map[string]any {
		t.Helper()
		d := sections[command]
		args := strings.Fields(strings.ReplaceAll(d.Command, "socks-lambda.zip", zipFile))[1:]
		if command == "doctor" {
			args = append(args, "--backend", "aws")
		}
		args = append(args, extra...)
		r := runEnv(t, env, nil, append(args, "--stack", s.name)...)
		if r.code != code {
			t.Fatalf("want exit %d:\n%s", code, r)
		}
		for _, p := range d.Check(r.stdout) {
			t.Error(p)
		}
		outputs[command] = append(outputs[command], r.stdout)
		var got map[string]any
		_ = json.Unmarshal([]byte(r.stdout), &got)
		t.Logf("socks %s\n%s", strings.Join(args, " "), r.stdout)
		return got
	}
	run := func(command string, code int, extra ...string) map[string]any {
		t.Helper()
		return runIn(s.env, command, code, extra...)
	}
	tableARN := func(name string) *string {
		t.Helper()
		d, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return d.Table.TableArn
	}
	queueURL := func(name string) *string {
		t.Helper()
		u, err := sq.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return u.QueueUrl
	}
	nonEmpty := func(got map[string]any, field string) {
		t.Helper()
		if l, _ := got[field].([]any); len(l) == 0 {
			t.Errorf("%q is empty: this case does not show its items", field)
		}
	}

	// Each fails before it reads anything where nothing listens (awsEnv's
	// endpoint): its object, empty, with the error
	// (TestAWSJSONSaysWhyAnEarlyFailureFailed tries more).
	for _, c := range []string{"provision", "deploy", "teardown"} {
		if e, _ := runIn(awsEnv(t, nil), c, 1)["error"].(string); !strings.Contains(e, "cannot reach") {
			t.Errorf("%s where nothing listens: error %q; want it to say it cannot reach the endpoint", c, e)
		}
	}

	run("provision", 0, "--dry-run")
	run("provision", 0)

	// Drift and a repair: the queue's visibility timeout changed, and a
	// table without its stack tag (as a socks before stack tags made it).
	vt, err := sq.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: queueURL(queues.Main), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	setVT := func(v string) {
		t.Helper()
		if _, err := sq.SetQueueAttributes(t.Context(), &sqs.SetQueueAttributesInput{QueueUrl: queueURL(queues.Main), Attributes: map[string]string{"VisibilityTimeout": v}}); err != nil {
			t.Fatal(err)
		}
	}
	setVT("7")
	if _, err := db.UntagResource(t.Context(), &dynamodb.UntagResourceInput{ResourceArn: tableARN(tables.ChatterIDs), TagKeys: []string{awsops.TagStack}}); err != nil {
		t.Fatal(err)
	}
	got := run("provision", 1)
	nonEmpty(got, "drift")
	nonEmpty(got, "repaired")
	if e, _ := got["error"].(string); !strings.Contains(e, "nothing was changed") {
		t.Errorf("provision refused for drift without the error in --json")
	}
	setVT(vt.Attributes["VisibilityTimeout"])
	nonEmpty(run("provision", 0), "repaired")

	run("deploy", 0, "--dry-run")
	// The first deploy saves the URLs into a config profile, written in
	// dotted keys that a line edit cannot change safely: the file is
	// rewritten whole (configWarning). Only this run has the profile:
	// its URLs are AWS's, where nothing may be sent.
	cfgFile := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfgFile, []byte("[profiles]\njsondoc.backend = \"aws\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got = runIn(append(slices.Clone(s.env), "SOCKS_CONFIG="+cfgFile, "SOCKS_CONFIG_PROFILE=jsondoc"), "deploy", 0)
	if got["savedProfile"] != "jsondoc" || got["configWarning"] == nil {
		t.Errorf("deploy saved no profile, or did not say it rewrote the file whole: %v", got)
	}
	run("deploy", 0) // nothing to do
	// Drift of a deployed resource: a dry run says what it would update,
	// and why; deploy puts it right.
	cp := awsops.NewControlPlane(awsConfig(), awsops.Endpoints{All: moto})
	if _, err := cp.Lambda.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(s.name + "-socks"), Timeout: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	run("deploy", 0, "--dry-run")
	run("deploy", 0)
	run("doctor", 0)

	// A dry run: the plan in "deleted", what deploy made too, and
	// nothing deleted (the refusal below still finds everything).
	got = run("teardown", 0, "--dry-run")
	nonEmpty(got, "deleted")
	if got["dryRun"] != true || !strings.Contains(fmt.Sprint(got["deleted"]), s.name+"-socks") {
		t.Errorf("teardown --dry-run: dryRun %v, deleted %v; want true, and the function %s-socks among them", got["dryRun"], got["deleted"], s.name)
	}

	// A table tagged as another stack's: teardown deletes nothing.
	tag := func(name, stack string) {
		t.Helper()
		if _, err := db.TagResource(t.Context(), &dynamodb.TagResourceInput{ResourceArn: tableARN(name), Tags: []dbtypes.Tag{{Key: aws.String(awsops.TagStack), Value: aws.String(stack)}}}); err != nil {
			t.Fatal(err)
		}
	}
	tag(tables.Reports, s.name+"-other")
	for _, extra := range [][]string{{"--dry-run"}, nil} {
		got = run("teardown", 1, extra...)
		nonEmpty(got, "skipped")
		if e, _ := got["error"].(string); e == "" {
			t.Errorf("teardown %v refused without an error in --json", extra)
		}
		if got["dryRun"] != (extra != nil) {
			t.Errorf("teardown %v refused: dryRun %v", extra, got["dryRun"])
		}
	}
	tag(tables.Reports, s.name)

	// A table teardown may not delete: it stops, and says what is left.
	protect := func(on bool) error {
		_, err := db.UpdateTable(t.Context(), &dynamodb.UpdateTableInput{TableName: aws.String(tables.ChatterIDs), DeletionProtectionEnabled: aws.Bool(on)})
		return err
	}
	if err := protect(true); err != nil {
		t.Fatal(err)
	}
	got = run("teardown", 1)
	nonEmpty(got, "deleted")
	nonEmpty(got, "left")
	if err := protect(false); err != nil {
		t.Fatal(err)
	}
	run("teardown", 0)
	run("teardown", 0) // nothing to delete

	// Fields moto cannot make here; each one's own test checks it.
	notHere := map[string][]string{
		// A table provision may not create (commands/provision:
		// TestProvisionJSONSaysWhatWasCreatedWhenItStops).
		"provision": {".left", ".left[].kind", ".left[].name"},
		// An SNS topic whose subscriptions cannot be listed
		// (commands/provision: TestTeardownJSONShapesAreAsDocumented).
		"teardown": {".unreadableTopics[]", ".unreadableTopics[].topic", ".unreadableTopics[].error", ".unreadableTopics[].fix"},
		// doctor's dated checks need connections or dead letters
		// (TestJSONOutputIsAsDocumented sees them on the local backend).
		"doctor": {".checks[].time", ".checks[].timeLabel"},
	}
	for c, d := range sections {
		for _, p := range d.Unseen(outputs[c]) {
			if !slices.Contains(notHere[c], p) {
				t.Errorf("%s: %s is on the page but no run here printed it: make a case that does, or name the test that checks it", d.Command, p)
			}
		}
	}
}

// TestAWSJSONSaysWhyAnEarlyFailureFailed runs provision, deploy and
// teardown with --json where they fail before they have a plan: nothing
// listens at the endpoint, no credentials, no region. Each prints its
// object of docs/json.md on stdout, every list empty and `error` saying
// why, so that `socks deploy --json | jq .error` has an answer; the exit
// code and the error on stderr are as without --json. A usage error (exit
// 2) prints nothing on stdout, as the page's general rule says.
func TestAWSJSONSaysWhyAnEarlyFailureFailed(t *testing.T) {
	t.Parallel()
	docs, err := jsondoc.Read()
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]jsondoc.Section{}
	for _, d := range docs {
		if isAWSSection(d) {
			sections[strings.Fields(d.Command)[1]] = d
		}
	}
	zipFile := filepath.Join(t.TempDir(), "socks-lambda.zip")
	pkg, err := awsops.LambdaZip([]byte("#!/bin/sh\n")) // never uploaded
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zipFile, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fc := range []struct {
		name   string
		env    map[string]string
		phrase string
	}{
		// awsEnv's endpoint is a loopback port that refuses connections.
		{"nothing listens at the endpoint", nil, "cannot reach http://127.0.0.1:"},
		{"no credentials", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "no AWS credentials found"},
		{"no region", map[string]string{"AWS_REGION": ""}, "no AWS region"},
	} {
		for _, command := range []string{"provision", "deploy", "teardown"} {
			t.Run(command+" where "+fc.name, func(t *testing.T) {
				t.Parallel()
				d := sections[command]
				args := strings.Fields(strings.ReplaceAll(d.Command, "socks-lambda.zip", zipFile))[1:]
				r := runEnv(t, awsEnv(t, fc.env), nil, append(args, "--stack", "early")...)
				if r.code != 1 {
					t.Fatalf("want exit 1:\n%s", r)
				}
				if !strings.Contains(r.stderr, "socks: ") || !strings.Contains(r.stderr, fc.phrase) {
					t.Errorf("stderr does not say %q:\n%s", fc.phrase, r)
				}
				for _, p := range d.Check(r.stdout) {
					t.Error(p)
				}
				var got map[string]any
				if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
					t.Fatalf("stdout is not a JSON object (%v):\n%s", err, r)
				}
				if e, _ := got["error"].(string); !strings.Contains(e, fc.phrase) {
					t.Errorf("error %q does not say %q:\n%s", e, fc.phrase, r)
				}
				for k, v := range got {
					if l, ok := v.([]any); ok && len(l) > 0 {
						t.Errorf("%q is %v; want [], as nothing was found or done", k, l)
					}
				}
			})
		}
	}
	for _, command := range []string{"provision", "deploy", "teardown"} {
		t.Run(command+" given a bad flag prints nothing on stdout", func(t *testing.T) {
			t.Parallel()
			d := sections[command]
			args := strings.Fields(strings.ReplaceAll(d.Command, "socks-lambda.zip", zipFile))[1:]
			r := runEnv(t, awsEnv(t, nil), nil, append(args, "--stack", "early", "--sns-topic", "not-an-arn")...)
			if r.code != 2 || r.stdout != "" {
				t.Errorf("want exit 2 and nothing on stdout:\n%s", r)
			}
		})
	}
}
