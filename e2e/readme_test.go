package e2e

// The README's commands, run as written: TestEveryREADMECommandRuns pulls
// every command line out of README.md's ```sh blocks and runs each that
// works without an AWS account, in README order, with the built binary
// first on PATH, against a live `socks serve` on a temporary state dir (and
// the AWS backend's lines against the emulators). Each must exit as listed
// and print the listed piece of output. The lists below are closed: a
// README command that is neither run nor listed fails the test.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/procgroup"
	"github.com/socks-dev/socks/local"
)

// readmeRun is how the test runs one README command line.
type readmeRun struct {
	// env is where it runs: "" the local fixture (its state dir, with
	// `socks serve` running), "scratch" an empty state dir of its own (for
	// another serve), "aws" the AWS backend on the emulators.
	env string
	// sub replaces README text before running: placeholders such as an
	// example ID become real ones. Values may name fixture values as
	// {{NAME}}.
	sub map[string]string
	// then is shell run after the command, to show what it set.
	then string
	// before prepares what the command needs (dead letters, a fingerprint).
	before func(f *readmeFixture)
	// background commands keep running: the test waits for ready in their
	// output, runs during, and then waits for them to exit by themselves
	// (exits) or interrupts the socks process as Ctrl-C would.
	background bool
	ready      string
	during     func(f *readmeFixture)
	exits      bool
	// keep leaves a background command running until the test ends (a
	// gateway the next lines use); name records its first ws:// URL's
	// host:port as a fixture value.
	keep bool
	name string

	code  int
	want  string // a regexp the output (stdout, then stderr) must match
	never string // a regexp the output must not match
	// shown is the output the README shows for the command, on the
	// comment lines right after it: stdout must be exactly that.
	shown string
}

// readmeRuns are the README commands this test runs, by their exact text
// (trailing comments dropped).
var readmeRuns = map[string]readmeRun{
	"socks demo":                 {want: `(?m)^ok: everything behaved`},
	"socks demo --json | jq .ok": {want: `^true\n`},

	// A second gateway on its own state dir; port 8765 may be taken on a
	// shared machine, so the default one gets a free port.
	"socks serve": {env: "scratch", sub: map[string]string{"socks serve": "socks serve --addr 127.0.0.1:0"}, background: true, ready: `ws://127\.0\.0\.1:\d+/\n`},
	"socks serve --addr 127.0.0.1:0 --stage dev":                                                                     {env: "scratch", background: true, ready: `ws://127\.0\.0\.1:\d+/dev\n`},
	"socks serve --addr 127.0.0.1:0 --json":                                                                          {env: "scratch", background: true, ready: `^\{"websocket":"ws://127\.0\.0\.1:\d+/","management":"http://127\.0\.0\.1:\d+","page":"http://127\.0\.0\.1:\d+/","broker":true,"stateDir":"[^"]+"\}\n`},
	"socks serve --idle-timeout 30s --max-duration 5m -v":                                                            {env: "scratch", sub: map[string]string{"socks serve": "socks serve --addr 127.0.0.1:0"}, background: true, ready: `ws://127\.0\.0\.1:\d+/\n`},
	"socks serve --pprof 127.0.0.1:6060":                                                                             {env: "scratch", sub: map[string]string{"socks serve --pprof 127.0.0.1:6060": "socks serve --addr 127.0.0.1:0 --pprof 127.0.0.1:0"}, background: true, ready: `profiles on http://127\.0\.0\.1:\d+/debug/pprof/`},
	"socks serve --allow-origin https://app.example --max-connections-per-geek 20":                                   {env: "scratch", sub: map[string]string{"socks serve": "socks serve --addr 127.0.0.1:0"}, background: true, ready: `ws://127\.0\.0\.1:\d+/\n`},
	"socks serve --faults 'post500=0.1,post429=0.05,reset=0.02,slow=0.02:2s,drop-disconnect=0.1,connect-rate=500/s'": {env: "scratch", sub: map[string]string{"socks serve": "socks serve --addr 127.0.0.1:0"}, background: true, ready: `injecting faults`},
	"socks client-js --out web/vendor":                                                                               {then: "ls web/vendor", want: `socks\.d\.ts\nsocks\.js\n`},
	"socks chatter issue --geek Friendless --topics 'updates,entity:*'":                                              {want: `^sc_\S+\n$`},
	"socks publish --geek Friendless --topic jobs --message done --as eventbridge":                                   {want: `"Source":"socks"`},

	"socks chatter issue --geek Friendless":                {want: `^sc_\S+\n$`},
	"ID=$(socks chatter issue --geek Friendless --ttl 2h)": {then: `echo "ID=$ID"`, want: `ID=sc_\S+`},
	"socks chatter list --geek Friendless":                 {want: `(?m)^Friendless\t[0-9a-f]{12}\t`, never: `sc_`}, // "fingerprints only, never secrets"
	"socks chatter revoke --geek Friendless --id 3fa4c09b1e2d": {
		before: func(f *readmeFixture) { f.vars["FINGERPRINT"] = f.fingerprint("Friendless") },
		sub:    map[string]string{"3fa4c09b1e2d": "{{FINGERPRINT}}"},
		want:   `^revoked 1 chatter ID for Friendless\n$`,
	},
	"socks chatter revoke --geek Friendless --all": {want: `^revoked \d+ chatter IDs? for Friendless\n$`},

	"socks publish --geek Friendless --topic updates":                             {want: `^m-[0-9a-f]{24}\n(?s:.*)publishing the topic name "updates" as the event key`},
	"socks publish --geek Friendless --topic updates --message 'stats refreshed'": {want: `^m-[0-9a-f]{24}\n`},
	`socks publish --topic news --body '{"headline":"v2 is out"}' --wait`:         {want: `^m-[0-9a-f]{24}\ttargets=[1-9]\d*\tdelivered=[1-9]\d*\tgone=0\tfailed=0\n$`},
	`echo '{"progress":42}' | socks publish --geek Friendless --topic jobs`:       {want: `^m-[0-9a-f]{24}\n`},
	"socks publish --topic news,updates --message 'both'":                         {want: `^m-[0-9a-f]{24}\n`},
	"socks publish --topic . --body-file notice.json --direct":                    {want: `^m-[0-9a-f]{24}\ttargets=[1-9]\d*\tdelivered=[1-9]\d*\tgone=0\tfailed=0\n$`},

	"SOCKS_CHATTER_ID=$(socks chatter issue -g Friendless --ttl 1h) socks listen -g Friendless": {
		background: true, ready: ` connected ws://`,
		during: func(f *readmeFixture) {
			f.publish("--geek", "Friendless", "--topic", "updates", "--body", `{"readme":"env"}`)
		},
		want: `"body":\{"readme":"env"\}`,
	},
	"socks publish --topic jobs --message done --as sns": {want: `^\{"topics":\["jobs"\],"body":"done"\}\n`},
	"socks bench": {sub: map[string]string{"socks bench": "socks bench --connections 50 --samples 10"}, want: `(?i)connects`},
	"socks bench --connections 5000 --dialers 100 --json": {sub: map[string]string{"5000": "100"}, want: `"connectsPerSecond":`},
	"socks listen --geek Friendless --topic updates": {
		background: true, ready: ` connected ws://`,
		during: func(f *readmeFixture) {
			f.publish("--geek", "Friendless", "--topic", "updates", "--body", `{"readme":1}`)
		},
		want: `"body":\{"readme":1\}`,
	},
	`socks listen --geek Friendless --json | jq --unbuffered 'select(.kind == "message") | .body'`: {
		// Only bodies: the "connected" state line listen --json prints
		// first would show as null (it did, in a newcomer's walk). So
		// nothing tells that listen connected: publish until it hears,
		// as a geek of its own, whom no other connection here is.
		sub:        map[string]string{"Friendless": "ReadmeJq"},
		background: true, ready: ``,
		during: func(f *readmeFixture) {
			deadline := time.Now().Add(startTimeout + listenWait)
			for {
				rep := f.s.publishWait("--geek", "ReadmeJq", "--topic", "updates", "--body", `{"readme":2}`)
				if rep.Report != nil && rep.Report.Delivered > 0 || time.Now().After(deadline) {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
		want: `^\{\n  "readme": 2\n\}\n`, never: `null`,
	},
	"socks listen --geek Friendless --topic jobs --count 1 --timeout 30s": {
		background: true, ready: ` connected ws://`, exits: true,
		during: func(f *readmeFixture) { f.publish("--geek", "Friendless", "--topic", "jobs", "--body", `{"job":3}`) },
		want:   `"body":\{"job":3\}`,
	},
	`socks listen --geek Friendless --until '"done"' --no-input`: {
		background: true, ready: ` connected ws://`, exits: true,
		during: func(f *readmeFixture) { f.publish("--geek", "Friendless", "--topic", "jobs", "--message", "done") },
		want:   `"body":"done"`,
	},

	"socks subs list":                          {want: `(?m)^CONNECTION\tGEEK\tTOPICS\tCONNECTED\tLAST ACTIVE\n(?s:.*)\tFriendless\t`},
	"socks subs list --geek Friendless --live": {want: `(?m)\tFriendless\t[^\t]+\t\S+\t\d{4}-\d\d-\d\dT\S+\n`}, // "--live asks the Management API for last activity"
	"socks subs list --topic updates --json | jq -r '.[].connectionId'": {want: `^\S+\n`},
	"socks subs stats": {want: `(?m)^connections\t\d+\n`},

	"socks prune-stale --dry-run -v": {want: `(?m)^dry_run=true checked=\d+ `},
	"*/15 * * * * socks prune-stale --json >> /var/log/socks-prune.jsonl": {
		// A crontab line: the test runs its command, logging to a temp file.
		sub:  map[string]string{"*/15 * * * * ": "", "/var/log/socks-prune.jsonl": "{{DIR}}/socks-prune.jsonl"},
		then: `cat {{DIR}}/socks-prune.jsonl`,
		want: `"deletedTotal":\d+`,
	},

	"socks doctor": {
		// A dead letter makes doctor warn, which the next line shows.
		before: func(f *readmeFixture) { f.vars["DEAD_LETTER"] = f.deadLetter() },
		want:   `(?m)dead letters`,
	},
	`socks doctor --json | jq '.checks[] | select(.status != "ok")'`: {want: `"status": "warn"`},

	"socks dlq list":           {want: `(?m)^{{DEAD_LETTER}}\t`},
	"socks dlq show q-3f1c...": {sub: map[string]string{"q-3f1c...": "{{DEAD_LETTER}}"}, want: `(?m)^id\s+{{DEAD_LETTER}}\n`},
	"socks dlq redrive --all":  {want: `^redrove [1-9]\d* dead letters? onto the queue\n`},
	"socks dlq purge q-3f1c... --yes": {
		before: func(f *readmeFixture) { f.vars["DEAD_LETTER"] = f.deadLetter() },
		sub:    map[string]string{"q-3f1c...": "{{DEAD_LETTER}}"},
		want:   `^purged 1 dead letter\n`,
	},

	"socks broker --once --wait 2s": {want: `^received=\d+ done=\d+ retry=\d+ dead_lettered=\d+\n`},

	"socks provision --backend aws --dry-run --json": {env: "aws", want: `"changes"`},
	// The fixture's stack, not yet provisioned: nothing to delete.
	"socks teardown --backend aws --stack test --dry-run": {env: "aws", sub: map[string]string{" --stack test": ""}, want: `^nothing to delete: no table or queue of stack readme-\S+ .*exists\n`},

	"socks config":         {want: `(?m)^backend\tlocal\t\S+\n^config file\t- \(none at \S+config\.toml\)\n(?s:.*)^state file\t\S+socks\.db\n`}, // "backend in effect, and where it came from; config file (or where one would be read); state file"
	"socks version --json": {want: `"version":`},
	"export SOCKS_BACKEND=aws SOCKS_DYNAMODB_ENDPOINT_URL=$SOCKS_TEST_DYNAMODB_ENDPOINT SOCKS_SQS_ENDPOINT_URL=$SOCKS_TEST_SQS_ENDPOINT": {
		env: "aws", then: `echo "backend=$SOCKS_BACKEND dynamodb=$SOCKS_DYNAMODB_ENDPOINT_URL sqs=$SOCKS_SQS_ENDPOINT_URL"`,
		want: `backend=aws dynamodb=http://\S+ sqs=http://\S+`,
	},
	"socks provision && socks doctor": {env: "aws", want: `(?m)^created table (?s:.*)^ok\ttables?\t`},

	"socks serve --backend aws --addr 127.0.0.1:8765": {
		env: "aws", sub: map[string]string{"127.0.0.1:8765": "127.0.0.1:0"},
		background: true, keep: true, name: "AWS_GATEWAY", ready: `ws://127\.0\.0\.1:\d+/\n`,
	},
	"socks listen --backend aws --url ws://127.0.0.1:8765/ --geek Friendless --topic updates --count 1": {
		env: "aws", sub: map[string]string{"127.0.0.1:8765": "{{AWS_GATEWAY}}"},
		background: true, ready: ` connected ws://`, exits: true,
		during: func(f *readmeFixture) {
			f.publishAWS("--geek", "Friendless", "--topic", "updates", "--body", `{"aws":1}`)
		},
		want: `"body":\{"aws":1\}`,
	},
	"socks publish --backend aws --geek Friendless --topic updates --wait": {env: "aws", want: `^m-[0-9a-f]{24}\ttargets=\d+\tdelivered=\d+\tgone=\d+\tfailed=0\n`},
	"socks broker --backend aws --callback-url http://127.0.0.1:8765 --once --wait 2s": {
		env: "aws", sub: map[string]string{"127.0.0.1:8765": "{{AWS_GATEWAY}}"},
		want: `^received=\d+ done=\d+ retry=\d+ dead_lettered=\d+\n`,
	},
}

// readmeNeedsAWS are the README commands that need a real AWS account, and
// why. This test does not run them.
var readmeNeedsAWS = map[string]string{
	"socks listen --url wss://abc.execute-api.eu-west-1.amazonaws.com/prod --geek Friendless --id-file ~/.socks-id":                                                                                 "connects to a deployed API Gateway WebSocket API",
	"socks --backend aws bench --url wss://abc123.execute-api.eu-west-1.amazonaws.com/prod --callback https://abc123.execute-api.eu-west-1.amazonaws.com/prod --connections 200":                    "measures a deployed API Gateway (bench's own tests run it against the ceiling by URL)",
	"socks --backend aws bench --url wss://abc123.execute-api.eu-west-1.amazonaws.com/prod --callback https://abc123.execute-api.eu-west-1.amazonaws.com/prod --connections 200 --connect-rate 100": "measures a deployed API Gateway (commands/bench's tests check the pace on a fake clock)",
	"socks provision --backend aws --eventbridge-rule --source com.example.site --detail-type EntityChanged":                                                                                        "creates an EventBridge rule in a real account (TestProvisionedProducersDeliverToTheQueue runs it on moto)",
	"socks provision --backend aws --sns-topic arn:aws:sns:eu-west-1:123456789012:jobs [--sns-raw]":                                                                                                 "subscribes a real SNS topic (TestProvisionedProducersDeliverToTheQueue runs it on moto)",
	"socks deploy --backend aws --region eu-west-1 --stack prod --config-profile prod":                                                                                                              "deploys to a real account (TestDeployAndTeardownOnMoto runs deploy on moto)",
	"socks deploy --backend aws --stack prod --dry-run":                                                                                                                                             "plans against a real account (TestDeployCommandOnMoto runs --dry-run on moto)",
	"socks deploy --backend aws --stack prod --lambda-zip dist/socks_lambda_1.2.0_arm64.zip --json":                                                                                                 "deploys to a real account (TestDeployCommandOnMoto uploads a package on moto)",
	"socks broker --backend aws --stack prod --callback-url https://abc123.execute-api.eu-west-1.amazonaws.com/prod":                                                                                "posts through a deployed API's Management API",
	"socks provision --backend aws --region eu-west-1 --stack prod":                                                                                                                                 "creates the stack in a real account (`socks provision` on the emulators is run below)",
	"socks teardown --backend aws --stack test":                                                                                                                                                     "deletes a real stack after the operator types its name at a terminal",
}

// readmeRunElsewhere are README commands this test does not run itself,
// and why.
var readmeRunElsewhere = map[string]string{
	"socks serve --addr 0.0.0.0:8765": "binds every interface, and tests stay on loopback; TestAGatewayThatRequiresSignaturesRefusesUnsignedPushes runs the same signing path with --require-signature",
	"make demo":                       "TestMakeDemoIsTheREADMEsFirstCommand runs it",
	"make test":                       "it is the test command this test runs in",
	"go install github.com/socks-dev/socks/cmd/socks@latest": "installs the published module; the tests build ./cmd/socks from this tree",
	`eval "$(scripts/emulators start)"`:                      "make test already runs the suite under `scripts/emulators run`, which hands the endpoints to this test as SOCKS_TEST_*",
	"scripts/emulators stop":                                 "would stop the emulators the rest of the suite runs on",
}

// readmeCommands returns the command lines of README.md's sh blocks, in
// order, without trailing comments.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```"):
			lang := strings.TrimPrefix(trimmed, "```")
			in = !in && (lang == "sh" || lang == "bash" || lang == "shell" || lang == "console")
			continue
		case !in:
			continue
		}
		cmd := strings.TrimSpace(stripComment(line))
		if cmd == "" {
			continue
		}
		out = append(out, cmd)
	}
	return out
}

// readmeShown returns the output README.md shows for a command: the
// comment lines right after it in its sh block, without "# ", each ended
// by a newline.
func readmeShown(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{}
	in, last := false, ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		trimmed := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(trimmed, "```"):
			lang := strings.TrimPrefix(trimmed, "```")
			in = !in && (lang == "sh" || lang == "bash" || lang == "shell" || lang == "console")
			last = ""
		case !in || trimmed == "":
			last = ""
		case strings.HasPrefix(trimmed, "# "):
			if last != "" {
				shown[last] += strings.TrimPrefix(trimmed, "# ") + "\n"
			}
		default:
			last = strings.TrimSpace(stripComment(sc.Text()))
		}
	}
	return shown
}

// stripComment drops a trailing shell comment: a # after whitespace and
// outside quotes.
func stripComment(line string) string {
	var quote rune
	prev := ' '
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t') && i > 0:
			return line[:i]
		case r == '#' && i == 0:
			return ""
		}
		prev = r
	}
	return line
}

// TestREADMECommandListsAreClosed fails for a README command that is
// neither run nor listed, and for a listed one the README no longer has.
func TestREADMECommandListsAreClosed(t *testing.T) {
	t.Parallel()
	cmds := readmeCommands(t)
	inREADME := map[string]bool{}
	for _, c := range cmds {
		inREADME[c] = true
		_, run := readmeRuns[c]
		_, aws := readmeNeedsAWS[c]
		_, elsewhere := readmeRunElsewhere[c]
		if !run && !aws && !elsewhere {
			t.Errorf("README.md has a command this test neither runs nor lists:\n\t%s\n"+
				"Add it to readmeRuns in e2e/readme_test.go with its exit code and a piece of its output, "+
				"or, if it needs a real AWS account, to readmeNeedsAWS with the reason.", c)
		}
	}
	for name, list := range map[string][]string{"readmeRuns": slices.Collect(maps.Keys(readmeRuns)), "readmeNeedsAWS": slices.Collect(maps.Keys(readmeNeedsAWS)), "readmeRunElsewhere": slices.Collect(maps.Keys(readmeRunElsewhere))} {
		for _, c := range list {
			if !inREADME[c] {
				t.Errorf("%s in e2e/readme_test.go lists a command README.md no longer has:\n\t%s\nRemove it, or change it to the README's new text.", name, c)
			}
		}
	}
	for c := range readmeShown(t) {
		if _, run := readmeRuns[c]; !run {
			t.Errorf("README.md shows the output of a command this test does not run, so nothing checks it:\n\t%s", c)
		}
	}
	if len(cmds) < 20 {
		t.Errorf("found only %d commands in README.md's sh blocks; is the extraction broken?", len(cmds))
	}
}

// readmeFixture is what the README's commands run against.
type readmeFixture struct {
	root   *testing.T // the whole test: what outlives one line
	t      *testing.T // the line's subtest
	s      *stack
	dir    string // working directory (holds notice.json)
	env    []string
	awsEnv []string // set by the first AWS line
	vars   map[string]string
}

// TestEveryREADMECommandRuns runs the README's commands in order.
func TestEveryREADMECommandRuns(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	f := &readmeFixture{root: t, t: t, s: s, dir: t.TempDir(), vars: map[string]string{}}
	f.vars["DIR"] = f.dir
	write(t, filepath.Join(f.dir, "notice.json"), `{"notice":"maintenance at noon"}`)
	chatterID := s.issue("Friendless")
	// A browser of Friendless's stays connected throughout, so that subs
	// and publish have someone to show and deliver to.
	mustDial(t, srv.connectURL("Friendless", chatterID, "updates,news,jobs"))
	f.env = append(socksEnv(t.TempDir()),
		"PATH="+filepath.Dir(socksBin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SOCKS_STATE_DIR="+s.dir,
		"HOME="+t.TempDir(),
		"XDG_CONFIG_HOME="+t.TempDir(),
		"CHATTER_ID="+chatterID,
	)

	shown := readmeShown(t)
	for _, c := range readmeCommands(t) {
		spec, ok := readmeRuns[c]
		if !ok {
			continue // TestREADMECommandListsAreClosed checks the rest
		}
		spec.shown = shown[c]
		t.Run(c, func(t *testing.T) {
			f.t, s.t = t, t
			defer func() { f.t, s.t = f.root, f.root }()
			f.runLine(c, spec)
		})
	}
}

func (f *readmeFixture) expand(s string) string {
	for k, v := range f.vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

// envFor is the environment of a line.
func (f *readmeFixture) envFor(t *testing.T, spec readmeRun) []string {
	switch spec.env {
	case "scratch":
		return append(append([]string(nil), f.env...), "SOCKS_STATE_DIR="+t.TempDir())
	case "aws":
		if f.awsEnv == nil {
			dynamoURL, sqsURL := emulators(t) // skips (or fails under make test) without them
			stack := uniqueStack("readme")
			f.awsEnv = append(awsEnv(f.root, map[string]string{
				"SOCKS_DYNAMODB_ENDPOINT_URL": dynamoURL, "SOCKS_SQS_ENDPOINT_URL": sqsURL,
				"SOCKS_BACKEND": "aws", "SOCKS_STACK": stack,
				envTestDynamo: dynamoURL, envTestSQS: sqsURL,
				"XDG_CONFIG_HOME": f.root.TempDir(), "HOME": f.root.TempDir(),
			}), "PATH="+filepath.Dir(socksBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			env := f.awsEnv
			f.root.Cleanup(func() {
				cmd := exec.Command(socksBin, "teardown", "--yes")
				cmd.Env = env
				_ = cmd.Run() // a stack that was never provisioned is fine
			})
		}
		return f.awsEnv
	}
	return f.env
}

// shell builds `bash -c LINE[; THEN]` in its own process group.
func (f *readmeFixture) shell(line string, spec readmeRun, env []string) *exec.Cmd {
	script := line
	for from, to := range spec.sub {
		script = strings.ReplaceAll(script, from, f.expand(to))
	}
	if spec.then != "" {
		script += "\n" + f.expand(spec.then)
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = f.dir
	cmd.Env = env
	procgroup.Own(cmd)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

func (f *readmeFixture) runLine(line string, spec readmeRun) {
	t := f.t
	if strings.Contains(line, "| jq ") {
		if _, err := exec.LookPath("jq"); err != nil {
			if os.Getenv(envRequireEmuls) == "1" {
				t.Fatalf("jq is not installed, and this README command pipes into it (scripts/test installs it): %v", err)
			}
			t.Skip("jq is not installed: run `make test`, which installs it, or apt-get install jq")
		}
	}
	env := f.envFor(t, spec)
	if spec.before != nil {
		spec.before(f)
	}
	cmd := f.shell(line, spec, env)
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", line, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	output := func() string { return stdout.String() + stderr.String() }
	kill := func() {
		procgroup.Kill(cmd.Process)
		<-done
	}
	// wait waits at most d for the command to exit.
	wait := func(d time.Duration) bool {
		select {
		case <-done:
			return true
		case <-time.After(d):
			return false
		}
	}

	if spec.background {
		ready := regexp.MustCompile(spec.ready)
		if !waitOutput(done, output, ready, startTimeout+listenWait) {
			kill()
			t.Fatalf("%s did not show %q\noutput:\n%s", line, spec.ready, output())
		}
		if spec.name != "" {
			if m := regexp.MustCompile(`ws://([^/\s]+)/`).FindStringSubmatch(stdout.String()); m != nil {
				f.vars[spec.name] = m[1]
			}
		}
		if spec.keep {
			root := f.root
			root.Cleanup(func() {
				interruptSocks(cmd.Process.Pid)
				if !wait(stopTimeout) {
					kill()
					root.Errorf("%s did not stop within %s of Ctrl-C", line, stopTimeout)
				} else if code := cmd.ProcessState.ExitCode(); code != 0 {
					root.Errorf("%s exited %d after Ctrl-C; want 0\noutput:\n%s", line, code, output())
				}
			})
			return
		}
		if spec.during != nil {
			spec.during(f)
		}
		if spec.exits {
			if !wait(commandTimeout) {
				kill()
				t.Fatalf("%s did not exit by itself within %s\noutput:\n%s", line, commandTimeout, output())
			}
		} else {
			if spec.want != "" {
				// Bounded: the output must show what was published before
				// Ctrl-C, or the check below fails.
				waitOutput(done, output, regexp.MustCompile(f.expand(spec.want)), listenWait)
			}
			interruptSocks(cmd.Process.Pid)
			if !wait(stopTimeout) {
				kill()
				t.Fatalf("%s did not exit within %s of Ctrl-C\noutput:\n%s", line, stopTimeout, output())
			}
		}
	} else if !wait(commandTimeout) {
		kill()
		t.Fatalf("%s did not finish within %s\noutput:\n%s", line, commandTimeout, output())
	}

	code := cmd.ProcessState.ExitCode()
	if code != spec.code {
		t.Errorf("%s exited %d; want %d\nstdout:\n%s\nstderr:\n%s", line, code, spec.code, stdout, stderr)
	}
	if spec.want != "" && !regexp.MustCompile(f.expand(spec.want)).MatchString(output()) {
		t.Errorf("%s: the output does not match %q\nstdout:\n%s\nstderr:\n%s", line, f.expand(spec.want), stdout, stderr)
	}
	if spec.never != "" && regexp.MustCompile(spec.never).MatchString(output()) {
		t.Errorf("%s: the output matches %q, which the README says it never shows\nstdout:\n%s\nstderr:\n%s", line, spec.never, stdout, stderr)
	}
	if spec.shown != "" && stdout.String() != spec.shown {
		t.Errorf("%s: stdout is not what the README shows\nREADME:\n%s\nstdout:\n%s", line, spec.shown, stdout)
	}
}

// waitOutput waits (bounded by d, or until the process ended) for output()
// to match re.
func waitOutput(done <-chan struct{}, output func() string, re *regexp.Regexp, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if re.MatchString(output()) {
			return true
		}
		select {
		case <-done:
			return re.MatchString(output())
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// interruptSocks sends SIGINT to the socks processes of process group pgid,
// as Ctrl-C does, but not to the rest of a pipeline (jq), which then ends
// at the end of its input, flushing what it printed.
func interruptSocks(pgid int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 3 || fields[2] != strconv.Itoa(pgid) || string(stat[open+1:end]) != "socks" {
			continue
		}
		interrupt(pid)
	}
}

// publish publishes on the local fixture and waits for the broker.
func (f *readmeFixture) publish(args ...string) {
	f.t.Helper()
	f.s.publishWait(args...)
}

// publishAWS publishes on the AWS backend and waits for the broker.
func (f *readmeFixture) publishAWS(args ...string) {
	f.t.Helper()
	r := runEnv(f.t, f.awsEnv, nil, append(append([]string{"publish"}, args...), "--wait", "--wait-timeout", "20s")...)
	if r.code != 0 {
		f.t.Fatalf("want exit 0:\n%s", r)
	}
}

// fingerprint issues a chatter ID for geek and returns its fingerprint.
func (f *readmeFixture) fingerprint(geek string) string {
	f.t.Helper()
	f.s.issue(geek)
	var ids []struct {
		Fingerprint string    `json:"fingerprint"`
		IssuedAt    time.Time `json:"issuedAt"`
	}
	if err := json.Unmarshal([]byte(f.s.must("chatter", "list", "--geek", geek, "--json")), &ids); err != nil || len(ids) == 0 {
		f.t.Fatalf("chatter list --json: %v (%d IDs)", err, len(ids))
	}
	latest := ids[0]
	for _, id := range ids[1:] {
		if id.IssuedAt.After(latest.IssuedAt) {
			latest = id
		}
	}
	return latest.Fingerprint
}

// deadLetter puts a poison message on the queue, waits (bounded) until the
// running broker moved it to the dead letters, and returns its ID.
func (f *readmeFixture) deadLetter() string {
	f.t.Helper()
	ctx := testContext(f.t, commandTimeout)
	db, err := local.Open(ctx, filepath.Join(f.s.dir, "socks.db"), local.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	q := db.Queue()
	id, err := q.Send(ctx, []byte("not an envelope"))
	if err != nil {
		f.t.Fatal(err)
	}
	for {
		dls, err := q.ListDeadLetters(ctx, 0)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, d := range dls {
			if d.ID == id {
				return id
			}
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("the broker did not dead-letter poison message %s within %s", id, commandTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
