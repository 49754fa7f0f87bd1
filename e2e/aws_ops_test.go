package e2e

// The operator commands on the AWS backend, end to end: doctor, subs,
// prune-stale and dlq, against DynamoDB Local and ElasticMQ, with a
// `socks serve --backend aws --no-broker` as the gateway and its
// Management API. Every test provisions its own stack through the CLI.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// provision creates the stack through the CLI, and tears it down when the
// test ends.
func (s *awsStack) provision() {
	s.t.Helper()
	s.t.Cleanup(func() { s.cleanup("teardown", "--yes") })
	s.must("provision")
}

// serve starts `socks serve --backend aws --no-broker` on the stack and
// returns it with its Management API endpoint. It is stopped (before the
// teardown) when the test ends.
func (s *awsStack) serve() (*server, string) {
	s.t.Helper()
	srv := &server{proc: startEnv(s.t, s.env, s.args("serve", "--no-broker", "--addr", "127.0.0.1:0")...)}
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case line := <-srv.stdout.firstLine:
		srv.URL = strings.TrimSpace(line)
	case <-srv.done:
		s.t.Fatalf("socks serve --backend aws exited: %v\nstderr: %q", srv.err, srv.stderr)
	case <-timer.C:
		s.t.Fatalf("socks serve --backend aws printed no URL within %s\nstderr: %q", startTimeout, srv.stderr)
	}
	if !strings.HasPrefix(srv.URL, "ws://127.0.0.1:") {
		s.t.Fatalf("socks serve printed %q; want ws://127.0.0.1:PORT/", srv.URL)
	}
	return srv, strings.TrimSuffix("http"+strings.TrimPrefix(srv.URL, "ws"), "/")
}

// awsConfig is an SDK configuration with dummy credentials, for clients
// pointed at the emulators.
func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
}

// dynamoStore is the stack's store, opened in this process on DynamoDB
// Local, for seeding what the CLI cannot make.
func (s *awsStack) dynamoStore() *awsops.DynamoStore {
	dynamoURL, _ := emulators(s.t)
	return awsops.NewDynamoStore(awsops.NewDynamoDB(awsConfig(), dynamoURL), awsops.TablesFor(s.name))
}

// sqsQueue is the stack's queue, opened in this process on ElasticMQ.
func (s *awsStack) sqsQueue() *awsops.SQSQueue {
	_, sqsURL := emulators(s.t)
	return awsops.NewSQSQueue(awsops.NewSQS(awsConfig(), sqsURL), awsops.QueuesFor(s.name), awsops.SQSOptions{})
}

// doctorCheck is one check of `socks doctor --json`.
type doctorCheck struct {
	Name, Status, Detail, Fix string
	TimeLabel                 string    `json:"timeLabel"`
	Time                      time.Time `json:"time"`
}

// doctor runs `socks doctor --json ARGS` and returns its exit code and
// checks by name.
func (s *awsStack) doctor(args ...string) (result, map[string]doctorCheck) {
	s.t.Helper()
	r := s.run(append([]string{"doctor", "--json"}, args...)...)
	var rep struct {
		OK     bool          `json:"ok"`
		Checks []doctorCheck `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		s.t.Fatalf("doctor --json printed no report (%v):\n%s", err, r)
	}
	if rep.OK != (r.code == 0) {
		s.t.Errorf("report ok=%v but exit %d", rep.OK, r.code)
	}
	checks := make(map[string]doctorCheck, len(rep.Checks))
	for _, c := range rep.Checks {
		checks[c.Name] = c
	}
	return r, checks
}

// wantCheck checks one doctor check's status and that its detail and fix
// say each phrase.
func wantCheck(t *testing.T, checks map[string]doctorCheck, name, status string, phrases ...string) {
	t.Helper()
	c, ok := checks[name]
	if !ok {
		t.Errorf("no %q check in %v", name, checks)
		return
	}
	if c.Status != status {
		t.Errorf("%s is %s (%s → %s); want %s", name, c.Status, c.Detail, c.Fix, status)
	}
	text := c.Detail + " → " + c.Fix
	for _, p := range phrases {
		if !strings.Contains(text, p) {
			t.Errorf("%s says %q; want it to say %q", name, text, p)
		}
	}
}

// TestAWSDoctorNamesEachProblem runs `socks doctor --backend aws` on a
// healthy provisioned stack with a gateway as its Management API, then
// with the Management API answering 403, without a callback URL, and with
// the main queue deleted; and on another stack whose connections table was
// made by hand without its index.
func TestAWSDoctorNamesEachProblem(t *testing.T) {
	t.Parallel()
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("doctor")}
	s.provision()
	_, mgmt := s.serve()

	t.Run("a healthy stack exits 0 and every check says what it saw", func(t *testing.T) {
		r, checks := s.doctor("--callback-url", mgmt)
		if r.code != 0 {
			t.Errorf("exit %d; want 0\n%s", r.code, r)
		}
		wantCheck(t, checks, "backend", "ok", "aws (flag), stack "+s.name+", region us-east-1")
		wantCheck(t, checks, "endpoints", "ok", "DynamoDB at http://127.0.0.1:", "SQS at http://127.0.0.1:", "Management API at "+mgmt)
		wantCheck(t, checks, "credentials", "ok", "from EnvConfigCredentials")
		wantCheck(t, checks, "identity", "skip", "skipped: endpoint override (emulator)")
		wantCheck(t, checks, "tables", "ok", s.name+"-connections, "+s.name+"-chatter, "+s.name+"-reports")
		wantCheck(t, checks, "time to live", "ok", "on for "+s.name+"-connections")
		wantCheck(t, checks, "queues", "ok", s.name+"-envelopes and its dead-letter queue "+s.name+"-envelopes-dlq")
		wantCheck(t, checks, "queue", "ok", "0 waiting, 0 in flight")
		wantCheck(t, checks, "dead letters", "ok", "none")
		wantCheck(t, checks, "connections", "ok", "0 open")
		wantCheck(t, checks, "migration", "ok", "no connection records to migrate (read all 0 items of table "+s.name+"-connections)")
		wantCheck(t, checks, "management API", "ok", mgmt+" answers (410 Gone")
	})

	t.Run("the plain output has one line per check and no escape codes", func(t *testing.T) {
		r := s.run("doctor", "--callback-url", mgmt)
		if r.code != 0 || strings.ContainsRune(r.stdout, '\x1b') || strings.Count(r.stdout, "\n") != 13 {
			t.Errorf("want exit 0 and 13 plain lines:\n%s", r)
		}
		if !strings.Contains(r.stdout, "skip\tidentity\tskipped: endpoint override (emulator)\n") {
			t.Errorf("stdout does not show the identity skipped:\n%s", r.stdout)
		}
	})

	t.Run("a Management API answering 403 is named with its causes", func(t *testing.T) {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"Forbidden"}`))
		}))
		defer api.Close()
		r, checks := s.doctor("--callback-url", api.URL)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "socks: doctor found 1 problem") {
			t.Errorf("want exit 1 and one problem:\n%s", r)
		}
		wantCheck(t, checks, "management API", "fail", "403 Forbidden", "stage", "credentials", "execute-api:ManageConnections")
	})

	t.Run("no callback URL warns with how to set it and exits 0", func(t *testing.T) {
		r, checks := s.doctor()
		if r.code != 0 {
			t.Errorf("exit %d; want 0 (a warning)\n%s", r.code, r)
		}
		wantCheck(t, checks, "management API", "warn", "no Management API endpoint is configured", "--callback-url", "SOCKS_CALLBACK_URL")
	})

	t.Run("a deleted main queue is named with run socks provision", func(t *testing.T) {
		_, q := adminClients(t)
		ctx := testContext(t, commandTimeout)
		u, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(s.name + "-envelopes")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: u.QueueUrl}); err != nil {
			t.Fatal(err)
		}
		r, checks := s.doctor("--callback-url", mgmt)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "socks: doctor found 1 problem") {
			t.Errorf("want exit 1 and one problem:\n%s", r)
		}
		wantCheck(t, checks, "queues", "fail", "missing: queue "+s.name+"-envelopes", "run `socks provision`")
		wantCheck(t, checks, "queue", "skip", "queue "+s.name+"-envelopes is missing")
		wantCheck(t, checks, "dead letters", "skip")
		wantCheck(t, checks, "tables", "ok")
		wantCheck(t, checks, "management API", "ok")
	})

	t.Run("a table made without its index names the index, TTL and the missing rest, with fixes", func(t *testing.T) {
		other := &awsStack{t: t, env: s.env, name: uniqueStack("doctor-drift")}
		db, _ := adminClients(t)
		ctx := testContext(t, commandTimeout)
		table := createIndexlessTable(t, ctx, db, other.name)
		t.Cleanup(func() { other.cleanup("teardown", "--yes") })
		r, checks := other.doctor("--callback-url", mgmt)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "socks: doctor found 3 problems") {
			t.Errorf("want exit 1 and 3 problems (tables, time to live, queues):\n%s", r)
		}
		wantCheck(t, checks, "tables", "fail",
			"missing: table "+other.name+"-chatter, table "+other.name+"-reports",
			"table "+table+": index by-geek is absent; want partition key gpk (S), sort key gsk (S), all attributes projected",
			"add it: aws dynamodb update-table --table-name "+table,
			"then run `socks provision` to create what is missing")
		wantCheck(t, checks, "time to live", "fail", "table "+table+": time to live is off",
			"aws dynamodb update-time-to-live --table-name "+table+" --time-to-live-specification Enabled=true,AttributeName=expiresAt")
		wantCheck(t, checks, "queues", "fail", "missing: queue "+other.name+"-envelopes-dlq, queue "+other.name+"-envelopes", "run `socks provision`")
		wantCheck(t, checks, "connections", "skip", "table "+table+" cannot be read as socks reads it: its index by-geek differs")
	})
}

// TestAWSDoctorReportsRecordsStillToMigrate: connection records as an
// earlier socks wrote them (no geek item: a fan-out to their geek misses
// them), as its Lambda function still running after an upgrade writes
// them, are reported by doctor with their count and `socks provision`;
// after provision the check is ok. Doctor said nothing of them before.
func TestAWSDoctorReportsRecordsStillToMigrate(t *testing.T) {
	t.Parallel()
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("doctor-migrate")}
	s.provision()
	ctx := testContext(t, commandTimeout)
	now := time.Now()
	var conns []pubsub.Connection
	for i := range 5 {
		conns = append(conns, pubsub.Connection{ID: fmt.Sprintf("conn-%d", i), Geek: "alice", Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)})
	}
	if err := s.dynamoStore().ImportConnections(ctx, conns); err != nil {
		t.Fatal(err)
	}
	r, checks := s.doctor()
	if r.code != 0 {
		t.Errorf("exit %d; want 0 (a warning at most)\n%s", r.code, r)
	}
	wantCheck(t, checks, "migration", "ok", "no connection records to migrate (read all 15 items of table "+s.name+"-connections)")

	// Two records as the earlier layout has them: without their geek item.
	db, _ := adminClients(t)
	for _, id := range []string{"conn-1", "conn-3"} {
		if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(s.name + "-connections"),
			Key: map[string]dynamotypes.AttributeValue{
				"pk": &dynamotypes.AttributeValueMemberS{Value: "GEEK#alice"},
				"sk": &dynamotypes.AttributeValueMemberS{Value: "CONN#" + id},
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	r, checks = s.doctor()
	if r.code != 0 {
		t.Errorf("exit %d; want 0 (a warning)\n%s", r.code, r)
	}
	wantCheck(t, checks, "migration", "warn", "2 connection records to migrate in table "+s.name+"-connections (read all 13 items)",
		"fan-outs to users may miss them", "run `socks provision`")
	plain := s.run("doctor")
	if !strings.Contains(plain.stdout, "warn\tmigration\t2 connection records to migrate in table "+s.name+"-connections (read all 13 items): fan-outs to users may miss them until then\trun `socks provision`") {
		t.Errorf("the plain output has no tab-separated migration line with its fix:\n%s", plain)
	}

	s.must("provision")
	_, checks = s.doctor()
	wantCheck(t, checks, "migration", "ok", "no connection records to migrate (read all 15 items")
}

// TestAWSSubsAndPruneStale connects live clients through a gateway on the
// DynamoDB store, seeds records of dead connections through the store,
// and shows subs list and prune-stale on the AWS backend: the dead go, the
// live stay and still receive.
func TestAWSSubsAndPruneStale(t *testing.T) {
	t.Parallel()
	const live, tooOld, expired, gone = 3, 4, 3, 5
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("prune")}
	s.provision()
	srv, mgmt := s.serve()
	chatterID := strings.TrimSpace(s.must("chatter", "issue", "--geek", "alice"))
	clients := make([]*websocket.Conn, live)
	for i := range clients {
		clients[i] = mustDial(t, srv.connectURL("alice", chatterID, "updates,news"))
	}

	type listed struct {
		ID     string   `json:"connectionId"`
		Geek   string   `json:"geek"`
		Topics []string `json:"topics"`
	}
	list := func(t *testing.T, args ...string) []listed {
		t.Helper()
		r := s.run(append([]string{"subs", "list", "--json"}, args...)...)
		var got []listed
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("subs list --json: %v\n%s", err, r)
		}
		return got
	}

	t.Run("subs list shows the connected clients with their topics", func(t *testing.T) {
		got := list(t, "--geek", "alice")
		if len(got) != live {
			t.Fatalf("%d connections listed; want %d: %+v", len(got), live, got)
		}
		for _, c := range got {
			if c.Geek != "alice" || strings.Join(c.Topics, ",") != "news,updates" || c.ID == "" {
				t.Errorf("listed %+v; want alice on news,updates", c)
			}
		}
		r := s.run("subs", "list", "--topic", "news")
		if r.code != 0 || strings.Count(r.stdout, "\talice\t") != live {
			t.Errorf("subs list --topic news: want %d tab-separated lines for alice:\n%s", live, r)
		}
		checkEmpty(t, s.run("subs", "list", "--geek", "nobody"), "no open connections of nobody")
	})

	seeded := seedDead(t, s.dynamoStore(), tooOld, expired, gone)

	t.Run("doctor counts the open connections and the stale records", func(t *testing.T) {
		r, checks := s.doctor("--callback-url", mgmt)
		if r.code != 0 {
			t.Errorf("exit %d; want 0 (warnings only)\n%s", r.code, r)
		}
		// The gone records look open until the Management API is asked.
		wantCheck(t, checks, "connections", "warn", fmt.Sprintf("%d open, %d stale records", live+gone, tooOld+expired), "socks prune-stale")
		// The store keeps milliseconds.
		oldest := seeded.Add(-10 * time.Minute).Truncate(time.Millisecond)
		if c := checks["connections"]; c.TimeLabel != "oldest connected" || !c.Time.Equal(oldest) {
			t.Errorf("connections: %+v; want the oldest open one, connected 10 minutes before the seeding (%v)", c, oldest)
		}
	})

	t.Run("prune-stale deletes the dead records and keeps the live ones", func(t *testing.T) {
		r := s.run("prune-stale", "--callback-url", mgmt, "--json")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("want exit 0 and a quiet stderr:\n%s", r)
		}
		p := parsePrune(t, r)
		if p.Checked != live+tooOld+expired+gone || p.Deleted.TooOld != tooOld || p.Deleted.Expired != expired || p.Deleted.Gone != gone || p.Kept != live || p.Errors != 0 {
			t.Errorf("prune-stale reported %+v; want %d too old, %d expired, %d gone deleted and %d kept", p, tooOld, expired, gone, live)
		}
		got := list(t)
		if len(got) != live {
			t.Errorf("%d connections listed after the prune; want the %d live ones: %+v", len(got), live, got)
		}
		for _, c := range got {
			if c.Geek != "alice" {
				t.Errorf("a record of %s survived", c.Geek)
			}
		}
		if again := parsePrune(t, s.run("prune-stale", "--callback-url", mgmt, "--json")); again.DeletedTotal != 0 || again.Kept != live {
			t.Errorf("a second run reported %+v; want nothing deleted", again)
		}
	})

	t.Run("the live clients still receive messages", func(t *testing.T) {
		s.must("publish", "--geek", "alice", "--topic", "news", "--message", "still here")
		out := s.must("broker", "--callback-url", mgmt, "--once", "--wait", "5s")
		if strings.TrimSpace(out) != "received=1 done=1 retry=0 dead_lettered=0" {
			t.Errorf("broker --once printed %q", out)
		}
		for _, c := range clients {
			if got := readText(t, c); got != `"still here"` {
				t.Errorf("got %q", got)
			}
		}
	})
}

// TestAWSDeadLetterRedriveDelivers dead-letters a valid envelope on SQS
// (as the broker does after repeated failures) next to a poison message
// the broker itself dead-letters, lists both with their reasons, redrives
// the valid one, and `socks broker --once` delivers it to a connected
// client.
func TestAWSDeadLetterRedriveDelivers(t *testing.T) {
	t.Parallel()
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("dlq")}
	s.provision()
	srv, mgmt := s.serve()
	chatterID := strings.TrimSpace(s.must("chatter", "issue", "--geek", "alice"))
	conn := mustDial(t, srv.connectURL("alice", chatterID, "jobs"))

	const reason = "failed 5 times; last error: PostToConnection: connection refused"
	const body = `{"job":42,"done":true}`
	s.must("publish", "--geek", "alice", "--topic", "jobs", "--body", body)
	q := s.sqsQueue()
	ctx := testContext(t, commandTimeout)
	msgs, err := q.Receive(ctx, store.MaxBatch, time.Minute, 5*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receiving the published envelope: %v %v", msgs, err)
	}
	// SQS stamps the dead letter in whole milliseconds.
	deadLettering := time.Now().Truncate(time.Millisecond)
	if err := q.DeadLetter(ctx, msgs[0], reason); err != nil {
		t.Fatal(err)
	}
	failedID := msgs[0].ID

	_, sq := adminClients(t)
	u, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(s.name + "-envelopes")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: u.QueueUrl, MessageBody: aws.String("this is not an envelope")}); err != nil {
		t.Fatal(err)
	}

	t.Run("doctor shows the waiting message and the dead letter with its age", func(t *testing.T) {
		r, checks := s.doctor("--callback-url", mgmt)
		if r.code != 0 {
			t.Errorf("exit %d; want 0 (warnings only)\n%s", r.code, r)
		}
		wantCheck(t, checks, "queue", "ok", "1 waiting, 0 in flight")
		wantCheck(t, checks, "dead letters", "warn", "1 dead letter", "socks dlq list", "socks dlq redrive --all")
		// Between the dead-lettering and doctor's answer, however long
		// the commands took on a loaded machine: "within a minute of now"
		// was a window a slow run could miss.
		if c := checks["dead letters"]; c.TimeLabel != "oldest failed" || c.Time.Before(deadLettering) || c.Time.After(time.Now()) {
			t.Errorf("dead letters: %+v; want when the dead letter failed, after %s", c, deadLettering.Format(time.RFC3339Nano))
		}
		wantCheck(t, checks, "connections", "ok", "1 open")
	})

	t.Run("the broker dead-letters a poison message at once", func(t *testing.T) {
		out := s.must("broker", "--callback-url", mgmt, "--once", "--wait", "5s")
		if strings.TrimSpace(out) != "received=1 done=0 retry=0 dead_lettered=1" {
			t.Errorf("broker --once printed %q", out)
		}
	})

	var poisonID string
	t.Run("dlq list shows both with their reasons", func(t *testing.T) {
		var dead []struct {
			ID     string          `json:"id"`
			Reason string          `json:"reason"`
			Body   json.RawMessage `json:"body"`
		}
		r := s.run("dlq", "list", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &dead); err != nil || r.code != 0 || len(dead) != 2 {
			t.Fatalf("want two dead letters (%v):\n%s", err, r)
		}
		for _, d := range dead {
			switch {
			case d.ID == failedID:
				var env struct {
					Users []string        `json:"users"`
					Body  json.RawMessage `json:"body"`
				}
				if err := json.Unmarshal(d.Body, &env); err != nil || d.Reason != reason || strings.Join(env.Users, ",") != "alice" || string(env.Body) != body {
					t.Errorf("the failed envelope: %+v (%v)", d, err)
				}
			case strings.HasPrefix(d.Reason, "unusable envelope"):
				poisonID = d.ID
			default:
				t.Errorf("unexpected dead letter %+v", d)
			}
		}
		plain := s.run("dlq", "list")
		if !strings.Contains(plain.stdout, failedID+"\t") || !strings.Contains(plain.stdout, "\t"+reason+"\n") {
			t.Errorf("dlq list does not show the failed envelope with its reason:\n%s", plain)
		}
	})

	t.Run("redrive puts the fixed envelope back and the broker delivers it", func(t *testing.T) {
		r := s.run("dlq", "redrive", failedID)
		if r.code != 0 || r.stdout != "redrove 1 dead letter onto the queue\n" {
			t.Fatalf("want exit 0:\n%s", r)
		}
		out := s.must("broker", "--callback-url", mgmt, "--once", "--wait", "5s")
		if strings.TrimSpace(out) != "received=1 done=1 retry=0 dead_lettered=0" {
			t.Errorf("broker --once printed %q", out)
		}
		if got := readText(t, conn); got != body {
			t.Errorf("the client got %q; want %q", got, body)
		}
	})

	t.Run("only the poison message is left, and purge removes it", func(t *testing.T) {
		if poisonID == "" {
			t.Skip("no poison message was listed")
		}
		r := s.run("dlq", "purge", poisonID, "--yes")
		if r.code != 0 || r.stdout != "purged 1 dead letter\n" {
			t.Errorf("want exit 0:\n%s", r)
		}
		checkEmpty(t, s.run("dlq", "list"), "no dead letters")
	})
}
