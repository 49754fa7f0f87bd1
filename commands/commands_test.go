package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/root"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/iostreams"
)

type result struct {
	code   int
	stdout string
	stderr string
}

func run(t *testing.T, stateDir, stdin string, args ...string) result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": stateDir}
	f := &cmdutil.Factory{
		IOStreams: ios,
		Getenv:    func(k string) string { return env[k] },
		Now:       time.Now,
		Build:     build.Info{Version: "1.2.3", Commit: "abc", Go: "go1.26"},
	}
	code := commands.Run(context.Background(), f, args)
	return result{code, out.String(), errOut.String()}
}

func TestExitCodesAndErrors(t *testing.T) {
	// A state dir in use: a lookup there that finds nothing (dlq show of
	// an unknown ID) exits 3 for the thing, not for the state dir.
	dir := t.TempDir()
	if r := run(t, dir, "", "chatter", "issue", "--geek", "zed"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		state    string
		wantCode int
		wantErr  string
	}{
		{"version works", []string{"version"}, "", dir, 0, ""},
		{"an unknown flag is a usage error", []string{"publish", "--nope"}, "", dir, 2, "unknown flag: --nope"},
		// chatter issue spells it --topics, publish and listen --topic:
		// the slip from one to the other said only "unknown flag".
		{"chatter issue --topic names --topics", []string{"chatter", "issue", "--geek", "alice", "--topic", "updates"}, "", dir, 2, "unknown flag: --topic: did you mean --topics?"},
		{"publish --topics names --topic", []string{"publish", "--topics", "t", "--message", "x"}, "", dir, 2, "unknown flag: --topics: did you mean --topic?"},
		{"a mistyped global flag is named too", []string{"config", "--state-dri", dir}, "", dir, 2, "unknown flag: --state-dri: did you mean --state-dir?"},
		// '_' for '-' is no slip at all, as in the config file's keys.
		{"a flag written with underscores is named", []string{"serve", "--max_connections_per_geek", "3"}, "", dir, 2, "unknown flag: --max_connections_per_geek: did you mean --max-connections-per-geek?"},
		{"an unknown command is a usage error", []string{"pubilsh"}, "", dir, 2, "unknown command"},
		// A typo after a noun printed the noun's help and exited 0, so a
		// script's `socks subs lst` or `socks dlq redrvie --all` passed.
		{"an unknown subcommand of a noun is a usage error", []string{"subs", "lst"}, "", dir, 2, `unknown command "lst" for "socks subs": did you mean list?`},
		// Cobra's own suggestion stands on lines of its own, which the
		// one line of an error showed as `"socks"  Did you mean this? \tpublish`.
		{"a mistyped command suggests the right one, on one line", []string{"publsh", "--topic", "t"}, "", dir, 2, `socks: unknown command "publsh" for "socks": did you mean publish?`},
		// `socks help nope` printed "Unknown help topic" and the whole
		// usage on stdout, and exited 0.
		{"help on an unknown topic is a usage error", []string{"help", "nope"}, "", dir, 2, `unknown help topic "nope": ` + "`socks help` lists the commands"},
		// Several suggestions read as every other choice does: "a, b or c",
		// not "a or b or c".
		{"a command that begins several names them as a choice", []string{"p"}, "", dir, 2, `socks: unknown command "p" for "socks": did you mean provision, prune-stale or publish?`},
		{"help on a word that begins several commands names them as a choice", []string{"help", "p"}, "", dir, 2, `unknown help topic "p": did you mean provision, prune-stale or publish?`},
		{"help on a mistyped command suggests the right one", []string{"help", "publsh"}, "", dir, 2, `unknown help topic "publsh": did you mean publish?`},
		// `socks help subs lst` showed the help of subs and exited 0.
		{"help on a mistyped verb of a noun suggests the right one", []string{"help", "subs", "lst"}, "", dir, 2, `unknown help topic "subs lst": did you mean subs list?`},
		{"help on an unknown verb of a noun is a usage error", []string{"help", "dlq", "nope"}, "", dir, 2, `unknown help topic "dlq nope": ` + "`socks help dlq` lists its commands"},
		{"help with a word after a command that has no verbs is a usage error", []string{"help", "publish", "nope"}, "", dir, 2, `unknown help topic "publish nope": ` + "`socks help publish` shows its help"},
		{"an unknown subcommand of dlq is a usage error", []string{"dlq", "redrvie", "--all"}, "", dir, 2, `unknown command "redrvie" for "socks dlq": did you mean redrive?`},
		// Cobra called a stray word an unknown command of a command that
		// has none; it is most often the rest of an unquoted value.
		{"a stray argument is named, with a hint about quotes", []string{"publish", "--topic", "t", "--message", "hello", "world"}, "", dir, 2, `socks: publish takes no arguments, but got "world": a value with spaces needs quotes`},
		// With no flag that takes a value before it, the stray word is no
		// rest of a value: `socks subs list Friendless` was told about
		// quotes, where --geek was missing.
		{"a stray argument after no value is not called the rest of one", []string{"subs", "list", "--live", "Friendless"}, "", dir, 2, "socks: subs list takes no arguments, but got \"Friendless\": give values with their flags"},
		{"a stray argument alone is not called the rest of a value", []string{"version", "extra"}, "", dir, 2, "socks: version takes no arguments, but got \"extra\": give values with their flags"},
		{"a duration without a unit says what to give, in words", []string{"publish", "--topic", "t", "--message", "x", "--wait-timeout", "5"}, "", dir, 2, `--wait-timeout "5" is not a duration: give a number with a unit, as 30s, 5m or 2h`},
		// Cobra's own flag checks read as socks's other refusals do,
		// naming the flags with their dashes: "required flag(s) \"topic\"
		// not set", "if any flags in the group [message body body-file]
		// are set none of the others can be; [body message] were all set"
		// and "at least one of the flags in the group [id id-file all] is
		// required" before.
		{"publish without a topic is a usage error", []string{"publish", "--message", "hi"}, "", dir, 2, "socks: --topic is required"},
		{"chatter issue without a geek is a usage error", []string{"chatter", "issue"}, "", dir, 2, "socks: --geek is required"},
		{"an empty topic is refused", []string{"publish", "--topic", "", "--message", "x"}, "", dir, 2, "topic is empty"},
		{"an empty geek is refused before any note about the body", []string{"publish", "--geek", "", "--topic", "updates"}, "", dir, 2, "geek is empty"},
		{"a bad --id is refused before any note about the body", []string{"publish", "--id", "a b", "--topic", "updates"}, "", dir, 2, "id contains whitespace"},
		// It quoted the ID, as no other of the ID's errors does.
		{"an --id that is not UTF-8 is refused without being echoed", []string{"publish", "--id", "job-secret\xff7", "--topic", "updates"}, "", dir, 2, "id is not valid UTF-8"},
		{"an overlong geek is refused", []string{"publish", "--topic", "t", "--geek", strings.Repeat("g", 129), "--message", "x"}, "", dir, 2, "at most 128"},
		{"a control character in a topic is refused", []string{"publish", "--topic", "up\x07dates", "--message", "x"}, "", dir, 2, "control character"},
		{"bad JSON is refused", []string{"publish", "--topic", "t", "--body", "{nope"}, "", dir, 2, "not valid JSON"},
		{"bad JSON on stdin is refused", []string{"publish", "--topic", "t"}, "nope", dir, 2, "not valid JSON"},
		{"an empty body says what to give", []string{"publish", "--topic", "t", "--body-file", "-"}, "", dir, 2, "the body from stdin is empty: give a JSON body, --message TEXT for plain text, or no body flag to publish the topic's name"},
		{"an empty --body says what to give", []string{"publish", "--topic", "t", "--body", " "}, "", dir, 2, "is empty: give a JSON body, --message TEXT for plain text, or no body flag to publish the topic's name"},
		{"a number no JSON parser can hold is refused in words, not Go's", []string{"publish", "--topic", "t", "--body", `{"n":1e999}`}, "", dir, 2, "number too large (1e999)"},
		{"a body over 128 KB is refused", []string{"publish", "--topic", "t", "--body", `"` + strings.Repeat("x", 128*1024) + `"`}, "", dir, 2, "is 128.0 KiB (131074 bytes); API Gateway delivers at most 128 KiB per message"},
		{"a missing --body-file is named, without Go's 'open'", []string{"publish", "--topic", "t", "--body-file", filepath.Join(dir, "nope.json")}, "", dir, 2, "--body-file " + filepath.Join(dir, "nope.json") + ": no such file"},
		{"a --body-file that is a directory is a usage error", []string{"publish", "--topic", "t", "--body-file", dir}, "", dir, 2, "is a directory"},
		{"two body flags are refused", []string{"publish", "--topic", "t", "--body", "1", "--message", "x"}, "", dir, 2, "socks: --message and --body do not go together: give only one of --message, --body or --body-file"},
		{"three body flags are refused", []string{"publish", "--topic", "t", "--body", "1", "--message", "x", "--body-file", "f"}, "", dir, 2, "socks: --message, --body and --body-file do not go together: give only one of --message, --body or --body-file"},
		{"publish --wait with --direct is refused", []string{"publish", "--topic", "t", "--message", "x", "--wait", "--direct"}, "", dir, 2, "socks: --wait and --direct do not go together: give only one of --wait or --direct"},
		{"an unusable state dir names itself", []string{"chatter", "issue", "--geek", "alice"}, "", filepath.Join(blocker, "sub"), 1, "state dir"},
		{"a bad ttl is a usage error", []string{"chatter", "issue", "--geek", "alice", "--ttl", "-1h"}, "", dir, 2, "ttl"},
		// 500ms was issued with exit 0, and stored to the millisecond it
		// could expire as it was printed: a secret that never connects.
		{"a ttl under a second is a usage error", []string{"chatter", "issue", "--geek", "alice", "--ttl", "500ms"}, "", dir, 2, "ttl 500ms is out of range: give a duration of at least 1s"},
		{"revoke needs --id or --all", []string{"chatter", "revoke", "--geek", "alice"}, "", dir, 2, "socks: give one of --id, --id-file or --all"},
		{"docs needs --man or --markdown", []string{"docs"}, "", dir, 2, "socks: give one of --man or --markdown"},
		{"an unknown backend is a usage error", []string{"--backend", "gcp", "config"}, "", dir, 2, "unknown backend"},
		// --config-profile "$P" with P unset deployed with the default
		// profile; --state-dir "$D" worked on the default state.
		{"an empty --config-profile is a usage error", []string{"--config-profile", "", "config"}, "", dir, 2, "--config-profile is empty"},
		{"an empty --state-dir is a usage error", []string{"chatter", "list", "--state-dir", ""}, "", dir, 2, "--state-dir is empty"},
		{"an empty --config is a usage error", []string{"--config=", "config"}, "", dir, 2, "--config is empty"},
		{"chatter issue with no live IDs allowed is a usage error", []string{"chatter", "issue", "--geek", "alice", "--max-live", "0"}, "", dir, 2, "--max-live"},
		{"chatter issue limited to '*' is a usage error", []string{"chatter", "issue", "--geek", "alice", "--topics", "*"}, "", dir, 2, "would allow every topic but '.'"},
		{"chatter issue with '*' inside a pattern is a usage error", []string{"chatter", "issue", "--geek", "alice", "--topics", "a*b"}, "", dir, 2, "may only end one"},
		{"chatter issue with an empty topic pattern is a usage error", []string{"chatter", "issue", "--geek", "alice", "--topics", "updates,,news"}, "", dir, 2, "topic is empty"},
		{"serve with --max-topics over 50 is a usage error", []string{"serve", "--max-topics", "51"}, "", dir, 2, "--max-topics 51 is out of range"},
		{"serve with --max-topics that is not a number is a usage error", []string{"serve", "--max-topics", "many"}, "", dir, 2, "--max-topics"},
		{"serve with no connections per geek is a usage error", []string{"serve", "--max-connections-per-geek", "0"}, "", dir, 2, "--max-connections-per-geek"},
		{"serve with an --allow-origin that is not an origin is a usage error", []string{"serve", "--allow-origin", "app.example/path"}, "", dir, 2, "--allow-origin takes origins"},
		{"serve with a queue bound under one message is a usage error", []string{"serve", "--max-queued-bytes", "1000"}, "", dir, 2, "--max-queued-bytes"},
		{"serve with no frames per second is a usage error", []string{"serve", "--max-frames-per-second", "0"}, "", dir, 2, "--max-frames-per-second"},
		{"serve with no connections is a usage error", []string{"serve", "--max-connections", "0"}, "", dir, 2, "--max-connections"},
		{"listen with a ping every millisecond is a usage error", []string{"listen", "--geek", "alice", "--ping-interval", "1ms"}, "", dir, 2, "--ping-interval 1ms is too short"},
		{"listen renewing every millisecond is a usage error", []string{"listen", "--geek", "alice", "--max-connection", "1ms"}, "", dir, 2, "--max-connection 1ms is too short"},
		{"listen with an --id-file that is missing is a usage error", []string{"listen", "--geek", "alice", "--id-file", filepath.Join(dir, "nope")}, "", dir, 2, "--id-file: cannot read"},
		{"a revoke ID that looks like a mistyped secret is refused without being echoed", []string{"chatter", "revoke", "-g", "alice", "--id", "xc_Typo0SecretValue"}, "", dir, 2, "neither a chatter ID nor a fingerprint"},
		{"a revoke ID that is neither a secret nor a fingerprint is refused", []string{"chatter", "revoke", "-g", "alice", "--id", "xyz"}, "", dir, 2, "neither a chatter ID nor a fingerprint"},
		{"a listing geek with a control character is refused", []string{"chatter", "list", "--geek", "al\x01ice"}, "", dir, 2, "control character"},
		{"subs list on a bad topic is refused", []string{"subs", "list", "--topic", "up\x07dates"}, "", dir, 2, "control character"},
		// It said "give several names as separate values", which subs
		// list does not take: --topic a --topic b lists b alone.
		{"subs list on a comma list of topics says it takes one", []string{"subs", "list", "--topic", "updates,news"}, "", dir, 2, `--topic "updates,news": subs list takes one topic, not a list: run it once per topic`},
		// "give several names as separate values" was wrong advice for a
		// flag that takes one geek; publish --geek takes several.
		{"chatter issue with a comma in --geek says a name may not have one", []string{"chatter", "issue", "--geek", "alice,bob"}, "", dir, 2, `geek "alice,bob": a geek name may not contain a comma`},
		{"listen with a comma in --geek says a name may not have one", []string{"listen", "--geek", "alice,bob"}, "", dir, 2, `geek "alice,bob": a geek name may not contain a comma`},
		{"subs list with a comma in --geek says a name may not have one", []string{"subs", "list", "--geek", "alice,bob"}, "", dir, 2, `geek "alice,bob": a geek name may not contain a comma`},
		{"publish with a comma in --geek says to give several geeks apart", []string{"publish", "--topic", "t", "--geek", "alice,bob", "--message", "x"}, "", dir, 2, `--geek "alice,bob": a geek name may not contain a comma; give several geeks as separate values: --geek alice --geek bob`},
		{"serve with an --addr that is not HOST:PORT is a usage error", []string{"serve", "--addr", "nope"}, "", dir, 2, `--addr "nope": give HOST:PORT`},
		{"serve with a port out of range is a usage error", []string{"serve", "--addr", "127.0.0.1:99999"}, "", dir, 2, `--addr "127.0.0.1:99999": give HOST:PORT`},
		{"serve with both -v and -q is a usage error", []string{"serve", "-v", "-q"}, "", dir, 2, "socks: --verbose and --quiet do not go together: give only one of --verbose or --quiet"},
		{"serve with a zero --max-duration is a usage error", []string{"serve", "--max-duration", "0s"}, "", dir, 2, "--max-duration"},
		{"broker with both -v and -q is a usage error", []string{"broker", "-v", "-q"}, "", dir, 2, "socks: --verbose and --quiet do not go together: give only one of --verbose or --quiet"},
		{"broker --json without --once is a usage error", []string{"broker", "--json"}, "", dir, 2, "--json goes with --once"},
		{"broker --wait 0 without --once is a usage error", []string{"broker", "--wait", "0s"}, "", dir, 2, "--wait 0s goes with --once"},
		{"prune-stale with a zero --max-age is a usage error", []string{"prune-stale", "--max-age", "0s"}, "", dir, 2, "--max-age"},
		{"prune-stale with no segments is a usage error", []string{"prune-stale", "--segments", "0"}, "", dir, 2, "--segments"},
		{"doctor with a broker timeout over Lambda's is a usage error", []string{"doctor", "--broker-timeout", "16m"}, "", dir, 2, "--broker-timeout"},
		{"dlq show needs an ID", []string{"dlq", "show"}, "", dir, 2, "socks: dlq show takes 1 argument, but got 0: socks dlq show ID"},
		{"dlq show of an unknown ID exits 3", []string{"dlq", "show", "q-nope"}, "", dir, 3, "no dead letter q-nope"},
		{"dlq redrive needs IDs or --all", []string{"dlq", "redrive"}, "", dir, 2, "their IDs"},
		{"dlq redrive with IDs and --all is a usage error", []string{"dlq", "redrive", "q-1", "--all"}, "", dir, 2, "not both"},
		{"dlq show of an empty ID is a usage error", []string{"dlq", "show", ""}, "", dir, 2, "dead letter ID is empty"},
		{"dlq redrive of an empty ID is a usage error", []string{"dlq", "redrive", "q-1", " "}, "", dir, 2, "dead letter ID is empty"},
		{"dlq purge of an empty ID is a usage error", []string{"dlq", "purge", "", "--yes"}, "", dir, 2, "dead letter ID is empty"},
		{"dlq purge off a terminal needs --yes", []string{"dlq", "purge", "--all"}, "", dir, 2, "without --yes"},
		{"dlq list with a negative limit is a usage error", []string{"dlq", "list", "--limit", "-1"}, "", dir, 2, "--limit"},
		{"provision on the local backend says to select AWS", []string{"provision"}, "", dir, 2, "--backend aws"},
		{"teardown off a terminal needs --yes", []string{"teardown", "--backend", "aws"}, "", dir, 2, "without --yes"},
		{"an endpoint override that is not a URL never reaches AWS", []string{"--backend", "aws", "--endpoint-url", "localhost:8000", "--region", "eu-west-1", "subs", "stats"}, "", dir, 2, "bad --endpoint-url"},
		{"completion with a stray argument is a usage error", []string{"completion", "bash", "stray"}, "", dir, 2, `"stray"`},
		// tcsh is no slip of bash, fish or zsh, which it is as near to:
		// "did you mean bash or fish or zsh?" left powershell out.
		{"completion for a shell it does not support names the four it does", []string{"completion", "tcsh"}, "", dir, 2, `unknown shell "tcsh" for "socks completion": give bash, fish, powershell or zsh`},
		{"a word as near to several verbs names them all", []string{"completion", "bsh"}, "", dir, 2, `unknown shell "bsh" for "socks completion": give bash, fish, powershell or zsh`},
		{"a word near no verb names them all", []string{"subs", "xyzzy"}, "", dir, 2, `unknown command "xyzzy" for "socks subs": give list or stats`},
		{"help on a shell completion does not support says where the list is", []string{"help", "completion", "tcsh"}, "", dir, 2, "unknown help topic \"completion tcsh\": `socks help completion` lists its commands"},
		{"publish with a zero --wait-timeout is a usage error", []string{"publish", "--topic", "t", "--message", "x", "--wait", "--wait-timeout", "0s"}, "", dir, 2, "--wait-timeout must be above 0"},
		// It was ignored without a word: the message queued, nothing
		// waited for.
		{"publish --wait-timeout without --wait is a usage error", []string{"publish", "--topic", "t", "--message", "x", "--wait-timeout", "1s"}, "", dir, 2, "--wait-timeout goes with --wait"},
		{"publish --wait-timeout without --wait is refused whatever its value", []string{"publish", "-t", "t", "-m", "x", "--wait-timeout", "0s", "--direct"}, "", dir, 2, "--wait-timeout goes with --wait"},
		// It was ignored without a word too: the broker that took the
		// message posted at its own --concurrency.
		{"publish --concurrency without --direct is a usage error", []string{"publish", "--topic", "t", "--message", "x", "--concurrency", "4"}, "", dir, 2, "--concurrency goes with --direct"},
		{"publish --concurrency with --wait is a usage error", []string{"publish", "-t", "t", "-m", "x", "--wait", "--concurrency", "4"}, "", dir, 2, "--concurrency goes with --direct"},
		{"publish --concurrency without --direct is refused whatever its value", []string{"publish", "-t", "t", "-m", "x", "--concurrency", "0"}, "", dir, 2, "--concurrency goes with --direct"},
		// --source, --detail-type and --event-bus shape an EventBridge
		// entry only: published, or printed for SNS, they were ignored.
		{"publish --source without --as eventbridge is a usage error", []string{"publish", "-t", "t", "-m", "x", "--source", "my.app"}, "", dir, 2, "--source goes with --as eventbridge: only an EventBridge entry has a Source"},
		{"publish --detail-type with --as sns is a usage error", []string{"publish", "-t", "t", "-m", "x", "--as", "sns", "--detail-type", "d"}, "", dir, 2, "--detail-type goes with --as eventbridge"},
		{"publish --event-bus without --as is a usage error", []string{"publish", "-t", "t", "-m", "x", "--event-bus", "b"}, "", dir, 2, "--event-bus goes with --as eventbridge"},
		// --as prints what a producer sends (JSON of its own shape) and
		// publishes nothing: --json, which prints publish's result, was
		// ignored without a word.
		{"publish --json with --as is a usage error", []string{"publish", "-t", "t", "-m", "x", "--as", "sns", "--json"}, "", dir, 2, "--json does not go with --as: --as publishes nothing"},
		// As --json, in the same words (cobra's "if any flags in the
		// group [as wait] are set none of the others can be" before).
		{"publish --wait with --as is a usage error", []string{"publish", "-t", "t", "-m", "x", "--as", "sns", "--wait"}, "", dir, 2, "--wait does not go with --as: --as publishes nothing"},
		{"publish --direct with --as is a usage error", []string{"publish", "-t", "t", "-m", "x", "--as", "eventbridge", "--direct"}, "", dir, 2, "--direct does not go with --as: --as publishes nothing"},
		{"publish --direct with a zero --concurrency is a usage error", []string{"publish", "-t", "t", "-m", "x", "--direct", "--concurrency", "0"}, "", dir, 2, "--concurrency must be at least 1"},
		// A filter given an empty value (an unset shell variable) must not
		// mean what leaving the flag out means: everything.
		{"chatter issue with an empty --topics is a usage error, not an ID for every topic", []string{"chatter", "issue", "--geek", "alice", "--topics", ""}, "", dir, 2, "--topics is empty"},
		{"chatter list with an empty --geek is a usage error, not every geek's list", []string{"chatter", "list", "--geek", ""}, "", dir, 2, "--geek is empty"},
		{"subs list with an empty --geek is a usage error, not every connection", []string{"subs", "list", "--geek", " "}, "", dir, 2, "--geek is empty"},
		{"subs list with an empty --topic is a usage error, not every connection", []string{"subs", "list", "--topic", ""}, "", dir, 2, "--topic is empty"},
		// A flag that holds one value kept the last of two: `subs list
		// --topic a --topic b` listed b alone and said nothing of a.
		{"subs list with --topic twice is a usage error, not the last topic", []string{"subs", "list", "--topic", "a", "--topic", "b"}, "", dir, 2, "--topic takes one value, but was given two: give it once"},
		{"a repeated shorthand is refused too", []string{"subs", "list", "-g", "alice", "--geek", "bob"}, "", dir, 2, "--geek takes one value"},
		{"a repeated duration is refused in words, not as a bad duration", []string{"chatter", "issue", "--geek", "alice", "--ttl", "1h", "--ttl", "2h"}, "", dir, 2, "--ttl takes one value, but was given two"},
		{"a repeated global flag is refused", []string{"--state-dir", dir, "--state-dir", filepath.Join(dir, "other"), "config"}, "", dir, 2, "--state-dir takes one value"},
		{"a repeated switch with another value is refused", []string{"chatter", "list", "--json", "--json=false"}, "", dir, 2, "--json takes one value"},
		{"a repeated secret flag does not echo either value", []string{"listen", "--geek", "alice", "--id", "xc_One", "--id", "xc_Two"}, "", dir, 2, "--id takes one value"},
		// The same value twice loses nothing (-vv, or a script adding a
		// flag it already had).
		{"the same value twice is one value", []string{"chatter", "list", "--json", "--json", "--geek", "zed", "--geek", "zed"}, "", dir, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.state, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantErr == "" {
				return
			}
			for i, a := range tt.args {
				// A secret, or a mistyped one, is never echoed.
				// Nor quoted: "job\xff7" holds none of the value's bytes
				// as they are, but all of its text.
				if a == "--id" && i+1 < len(tt.args) && (strings.Contains(r.stderr, tt.args[i+1]) || strings.Contains(r.stderr, strings.Trim(strconv.Quote(tt.args[i+1]), `"`))) {
					t.Errorf("stderr echoes the --id value %q: %s", tt.args[i+1], r.stderr)
				}
			}
			noGoInternals(t, r.stderr)
			first := strings.SplitN(r.stderr, "\n", 2)[0]
			if !strings.Contains(first, tt.wantErr) {
				t.Fatalf("first stderr line %q does not contain %q", first, tt.wantErr)
			}
			if tt.wantCode == 2 && r.stdout != "" {
				t.Fatalf("a usage error printed on stdout: %q", r.stdout)
			}
		})
	}
}

func TestReadCommandsOnAStateDirNothingRanWithCreateNothing(t *testing.T) {
	// A mistyped --state-dir made an empty state there, and the answer
	// "no open connections" looked like the real installation's.
	dir := filepath.Join(t.TempDir(), "typo")
	for _, tt := range []struct {
		args []string
		out  string
	}{
		{[]string{"subs", "list"}, ""},
		{[]string{"subs", "list", "--json"}, "[]\n"},
		{[]string{"subs", "stats", "--json"}, `{"connections":0,"geeks":0,"topics":[]}` + "\n"},
		{[]string{"chatter", "list", "--geek", "alice"}, ""},
		{[]string{"chatter", "list", "--json"}, "[]\n"},
		{[]string{"dlq", "list"}, ""},
		{[]string{"dlq", "list", "--json"}, "[]\n"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, dir, "", tt.args...)
			if r.code != 0 || r.stdout != tt.out || !strings.Contains(r.stderr, "nothing has run with state dir "+dir+" yet") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0, %q and a note that nothing ran there", r.code, r.stdout, r.stderr, tt.out)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the state dir was made (%v)", err)
			}
		})
	}
}

func TestDLQLookupsAndPruneOnAStateDirNothingRanWithCreateNothing(t *testing.T) {
	// dlq show answered "no dead letter" and prune-stale pruned an empty
	// state it had just made: a mistyped --state-dir (in a cron line)
	// passed for an installation with nothing to do.
	dir := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{
		{"dlq", "show", "q-1"},
		{"dlq", "redrive", "--all"},
		{"dlq", "purge", "--all", "--yes"},
		{"prune-stale"},
		{"prune-stale", "--json"},
	} {
		t.Run(strings.Join(args, " ")+" exits 3 and says nothing ran there", func(t *testing.T) {
			r := run(t, dir, "", args...)
			if r.code != cmdutil.ExitNotFound || r.stdout != "" || !strings.Contains(r.stderr, "nothing has run with state dir "+dir+" yet") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 3, nothing, and a note that nothing ran there", r.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "--help") {
				t.Errorf("stderr has a usage hint: %q", r.stderr)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the state dir was made (%v)", err)
			}
		})
	}
}

func TestCommandsThatStartNoStackMakeNoStateDir(t *testing.T) {
	// A mistyped --state-dir made that dir and a state file in it: chatter
	// issue printed an ID no serve would ever accept, revoke said it
	// revoked none, and listen and bench said no gateway ran, each
	// leaving an empty state behind. Publish alone refused (exit 3). Each
	// now refuses as publish does, makes nothing and says what it did not
	// do and how to make the dir.
	for _, tt := range []struct {
		args   []string
		undone string
	}{
		{[]string{"chatter", "issue", "--geek", "alice"}, "no chatter ID was issued"},
		{[]string{"chatter", "issue", "--geek", "alice", "--json"}, "no chatter ID was issued"},
		{[]string{"chatter", "revoke", "--geek", "alice", "--all"}, ""},
		{[]string{"chatter", "revoke", "--geek", "alice", "--id", "0123456789ab"}, ""},
		{[]string{"listen", "--geek", "alice", "--timeout", "1m", "--no-input"}, "nothing was connected"},
		{[]string{"bench", "--connections", "1"}, "nothing was measured"},
	} {
		t.Run(strings.Join(tt.args, " ")+" exits 3 and makes nothing", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "typo")
			r := run(t, dir, "", tt.args...)
			if r.code != cmdutil.ExitNotFound || r.stdout != "" || !strings.Contains(r.stderr, "nothing has run with state dir "+dir+" yet (it does not exist)") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 3, nothing, and that nothing ran there", r.code, r.stdout, r.stderr)
			}
			if tt.undone != "" && (!strings.Contains(r.stderr, tt.undone) || !strings.Contains(r.stderr, "`socks serve --state-dir "+dir+"` makes it")) {
				t.Errorf("stderr %q; want %q and that serve makes it", r.stderr, tt.undone)
			}
			if strings.Contains(r.stderr, "--help") {
				t.Errorf("stderr has a usage hint: %q", r.stderr)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the state dir was made (%v)", err)
			}
		})
	}
	// The default dir, on a machine where `socks serve` never ran: the
	// user typed no name, so the error does not ask them to check one.
	t.Run("the default dir", func(t *testing.T) {
		for _, args := range [][]string{
			{"chatter", "issue", "--geek", "alice"},
			{"publish", "--geek", "alice", "--topic", "news", "--message", "hi"},
			{"chatter", "revoke", "--geek", "alice", "--all"},
		} {
			r := run(t, "", "", args...)
			if r.code != cmdutil.ExitNotFound || r.stdout != "" ||
				!strings.Contains(r.stderr, "nothing has run with the default state dir ") ||
				!strings.Contains(r.stderr, "start the local stack with `socks serve`") ||
				strings.Contains(r.stderr, "check --state-dir") {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want 3, nothing, and to start socks serve", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
		}
	})
	// A state dir that exists but that nothing ran in: issuing there
	// before `socks serve` starts is how a stack is set up, and a dir
	// the user made is used as it is; revoking, listening and measuring
	// there find nothing, and make no state file.
	t.Run("an existing dir", func(t *testing.T) {
		for _, args := range [][]string{
			{"chatter", "revoke", "--geek", "alice", "--all"},
			{"listen", "--geek", "alice", "--timeout", "1m", "--no-input"},
			{"bench", "--connections", "1"},
		} {
			dir := t.TempDir()
			r := run(t, dir, "", args...)
			if r.code != cmdutil.ExitNotFound || r.stdout != "" || !strings.Contains(r.stderr, "nothing has run with state dir "+dir+" yet (it holds no socks.db)") {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want 3, nothing, and that nothing ran there", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("%s left %d entries in the state dir", strings.Join(args, " "), len(entries))
			}
		}
		dir := t.TempDir()
		if r := run(t, dir, "", "chatter", "issue", "--geek", "alice"); r.code != 0 || !strings.HasPrefix(r.stdout, "sc_") {
			t.Errorf("chatter issue in an empty existing dir: exit %d, stdout %q, stderr %q; want 0 and an ID", r.code, r.stdout, r.stderr)
		}
	})
}

func TestChatterIssueUsageErrorsComeBeforeTheStateDir(t *testing.T) {
	// A --ttl out of range was checked only once the store was open: in
	// a state dir that did not exist it exited 3 (nothing ran there)
	// instead of 2, and in an empty one it made the state file first.
	for _, args := range [][]string{
		{"chatter", "issue", "--geek", "alice", "--ttl", "500ms"},
		{"chatter", "issue", "--geek", "alice", "--ttl", "2161h"},
		{"chatter", "issue", "--geek", "alice", "--topics", "*"},
		{"chatter", "issue", "--geek", "al ice"},
		{"chatter", "issue", "--geek", "alice", "--max-live", "0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			for _, dir := range []string{filepath.Join(t.TempDir(), "typo"), t.TempDir()} {
				r := run(t, dir, "", args...)
				if r.code != cmdutil.ExitUsage || r.stdout != "" {
					t.Errorf("in %s: exit %d, stdout %q, stderr %q; want 2 and nothing", dir, r.code, r.stdout, r.stderr)
				}
				if entries, err := os.ReadDir(dir); len(entries) != 0 || (err != nil && !errors.Is(err, fs.ErrNotExist)) {
					t.Errorf("in %s: the usage error left %d entries (%v)", dir, len(entries), err)
				}
			}
		})
	}
}

func TestEmptyListsAreNotErrors(t *testing.T) {
	dir := t.TempDir()
	// A state dir in use: nothing in it, as after a revoke.
	if r := run(t, dir, "", "chatter", "issue", "--geek", "zed"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run(t, dir, "", "chatter", "revoke", "--geek", "zed", "--all"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, tt := range []struct {
		args []string
		note string
	}{
		{[]string{"chatter", "list"}, "no chatter IDs"},
		{[]string{"chatter", "list", "--geek", "alice"}, "no chatter IDs for alice"},
		{[]string{"subs", "list"}, "no open connections"},
		{[]string{"subs", "list", "--topic", "updates"}, "no open connections on topic updates"},
		{[]string{"dlq", "list"}, "no dead letters"},
	} {
		t.Run(strings.Join(tt.args, " ")+" exits 0 and says so on stderr", func(t *testing.T) {
			r := run(t, dir, "", tt.args...)
			if r.code != 0 || r.stdout != "" || strings.TrimSpace(r.stderr) != tt.note {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0, nothing, %q", r.code, r.stdout, r.stderr, tt.note)
			}
		})
		t.Run(strings.Join(tt.args, " ")+" --json prints []", func(t *testing.T) {
			r := run(t, dir, "", append(tt.args, "--json")...)
			if r.code != 0 || r.stdout != "[]\n" || r.stderr != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0, [] and nothing", r.code, r.stdout, r.stderr)
			}
		})
	}
	// --all over nothing is an empty list, not a named thing not found:
	// a nightly `socks dlq redrive --all || alert` alerted on quiet nights.
	for _, args := range [][]string{
		{"dlq", "redrive", "--all"},
		{"dlq", "purge", "--all", "--yes"},
		{"chatter", "revoke", "--geek", "zed", "--all"},
	} {
		t.Run(strings.Join(args, " ")+" over nothing exits 0", func(t *testing.T) {
			r := run(t, dir, "", args...)
			if r.code != 0 || !strings.Contains(r.stdout, " 0 ") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0 and the count 0", r.code, r.stdout, r.stderr)
			}
		})
	}
	// IDs given that are not there are named things not found: exit 3,
	// and stderr says so and where to find them. Standard output stays
	// empty, with --json too, as for `dlq show` of an unknown ID: it
	// printed "revoked 0 chatter IDs" (or {"purged":0}) and then failed,
	// so a script read a result and an error at once.
	for _, tt := range []struct {
		args []string
		note string
	}{
		{[]string{"dlq", "redrive", "q-nope"}, "no dead letter q-nope: `socks dlq list` shows their IDs"},
		{[]string{"dlq", "purge", "q-nope", "--yes"}, "no dead letter q-nope: `socks dlq list` shows their IDs"},
		{[]string{"dlq", "purge", "q-nope", "q-nope2", "--yes"}, "none of the 2 IDs given is a dead letter: `socks dlq list` shows their IDs"},
		{[]string{"chatter", "revoke", "--geek", "zed", "--id", "3fa4c09b1e2d"}, "no chatter ID of zed matched: `socks chatter list --geek zed` shows their fingerprints"},
	} {
		for _, asJSON := range []bool{false, true} {
			args := tt.args
			if asJSON {
				args = append(slices.Clone(args), "--json")
			}
			t.Run(strings.Join(args, " ")+" exits 3, says why and prints nothing", func(t *testing.T) {
				r := run(t, dir, "", args...)
				if r.code != 3 || !strings.Contains(r.stderr, tt.note) || r.stdout != "" {
					t.Errorf("exit %d, stdout %q, stderr %q; want 3, nothing and %q", r.code, r.stdout, r.stderr, tt.note)
				}
			})
		}
	}
	t.Run("a lookup of one named thing still exits 3", func(t *testing.T) {
		r := run(t, dir, "", "dlq", "show", "q-nope")
		if r.code != 3 {
			t.Errorf("dlq show q-nope: exit %d; want 3", r.code)
		}
	})
}

func TestChatterIssueJSONShowsTheTimesAsStored(t *testing.T) {
	// Issue printed nanoseconds (…10.290362422Z) and list the stored
	// milliseconds (…10.29Z): a script matching the two never could.
	dir := t.TempDir()
	r := run(t, dir, "", "chatter", "issue", "--geek", "alice", "--ttl", "1.5555555s", "--json")
	if r.code != 0 {
		t.Fatalf("issue: %d %s", r.code, r.stderr)
	}
	var issued struct{ IssuedAt, ExpiresAt, Fingerprint string }
	if err := json.Unmarshal([]byte(r.stdout), &issued); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, "", "chatter", "list", "--geek", "alice", "--json")
	var listed []struct{ IssuedAt, ExpiresAt, Fingerprint string }
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 1 {
		t.Fatalf("list: %v %q", err, r.stdout)
	}
	if listed[0] != issued {
		t.Errorf("issue printed %+v, list shows %+v", issued, listed[0])
	}
}

func TestChatterIssueListRevoke(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, "", "chatter", "issue", "--geek", "alice")
	if r.code != 0 {
		t.Fatalf("issue: %d %s", r.code, r.stderr)
	}
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "sc_") || len(secret) < 30 {
		t.Fatalf("issued %q", secret)
	}
	r = run(t, dir, "", "chatter", "list", "--geek", "alice")
	if r.code != 0 || strings.Contains(r.stdout, secret) {
		t.Fatalf("list: code %d, output %q (must not show the secret)", r.code, r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "GEEK\tFINGERPRINT") {
		t.Fatalf("plain list output = %q", r.stdout)
	}
	fp := strings.Split(lines[1], "\t")[1]
	r = run(t, dir, "", "chatter", "revoke", "--geek", "alice", "--id", fp)
	if r.code != 0 || !strings.Contains(r.stdout, "revoked 1 chatter ID") {
		t.Fatalf("revoke by fingerprint: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, "", "chatter", "revoke", "--geek", "alice", "--id", secret)
	if r.code != 3 {
		t.Fatalf("revoking again must find nothing (exit 3), got %d", r.code)
	}
}

func TestChatterRevokeReadsIDsFromAFileOrStdin(t *testing.T) {
	// --id SECRET put the secret in argv (ps, shell history); --id-file
	// reads the IDs, one a line, from a file or from standard input ("-").
	dir := t.TempDir()
	issue := func() string {
		t.Helper()
		r := run(t, dir, "", "chatter", "issue", "--geek", "alice")
		if r.code != 0 {
			t.Fatalf("issue: %d %s", r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	a, b, c := issue(), issue(), issue()
	file := filepath.Join(t.TempDir(), "ids")
	if err := os.WriteFile(file, []byte(a+"\n\n  "+b+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "", "chatter", "revoke", "--geek", "alice", "--id-file", file)
	if r.code != 0 || r.stdout != "revoked 2 chatter IDs for alice\n" {
		t.Fatalf("revoke --id-file FILE: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, c+"\n", "chatter", "revoke", "--geek", "alice", "--id-file", "-")
	if r.code != 0 || r.stdout != "revoked 1 chatter ID for alice\n" {
		t.Fatalf("revoke --id-file -: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte(a+"\noops-not-an-id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"an empty file", []string{"--id-file", writeEmpty(t)}, "holds no chatter ID"},
		{"a bad line, not echoed", []string{"--id-file", bad}, "line 2 of --id-file"},
		{"a missing file", []string{"--id-file", "/nonexistent/ids"}, "cannot read /nonexistent/ids"},
		{"with --all", []string{"--id-file", file, "--all"}, "--id-file and --all do not go together: give only one of --id, --id-file or --all"},
	} {
		r := run(t, dir, "", append([]string{"chatter", "revoke", "--geek", "alice"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "oops") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, r.code, r.stderr, tc.want)
		}
	}
	r = run(t, dir, "", "chatter", "list", "--geek", "alice", "--json")
	var ids []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ids); err != nil || len(ids) != 0 {
		t.Fatalf("after revoking all three alice holds %q", r.stdout)
	}
}

func writeEmpty(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(p, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChatterRevokeWithAnEmptyIDRevokesNothing(t *testing.T) {
	// `socks chatter revoke --geek alice --id "$FP"` with FP unset must not
	// log every session of alice out.
	dir := t.TempDir()
	for range 2 {
		if r := run(t, dir, "", "chatter", "issue", "--geek", "alice"); r.code != 0 {
			t.Fatalf("issue: %d %s", r.code, r.stderr)
		}
	}
	for _, id := range []string{"", " "} {
		r := run(t, dir, "", "chatter", "revoke", "--geek", "alice", "--id", id)
		if r.code != 2 || !strings.Contains(r.stderr, "--id is empty") || r.stdout != "" {
			t.Errorf("revoke --id %q: exit %d, stdout %q, stderr %q; want 2 and --id is empty", id, r.code, r.stdout, r.stderr)
		}
	}
	r := run(t, dir, "", "chatter", "list", "--geek", "alice", "--json")
	var ids []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ids); err != nil || len(ids) != 2 {
		t.Fatalf("after the refused revokes alice holds %d chatter IDs (%q); want both", len(ids), r.stdout)
	}
}

func TestPublishQueuesAndPrintsTheID(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, "", "publish", "--geek", "alice", "--topic", "updates", "--message", "hi", "--id", "m-42")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "m-42" {
		t.Fatalf("publish: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "no local gateway is running") {
		t.Fatalf("publishing with no gateway should say the message waits: %q", r.stderr)
	}
	r = run(t, dir, "", "publish", "--topic", "updates", "--message", "hi", "--wait", "--wait-timeout", "1h")
	if r.code != 1 || !strings.Contains(r.stderr, "no local gateway is running") || r.stdout != "" {
		t.Fatalf("--wait with no gateway must fail at once: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, "", "publish", "--topic", "updates", "--message", "hi", "--direct")
	if r.code != 1 || !strings.Contains(r.stderr, "socks serve") {
		t.Fatalf("--direct with no gateway: %d %q", r.code, r.stderr)
	}
}

func TestPublishToAStateDirThatDoesNotExistQueuesNothing(t *testing.T) {
	// A mistyped --state-dir made that dir, queued the message there and
	// exited 0, with a note that it waits for `socks serve`: the serve
	// that runs, on the right dir, never would deliver it. Nothing ran
	// with a dir that does not exist: a named thing not found (exit 3),
	// nothing made, nothing queued, and the way to make it.
	for _, extra := range [][]string{nil, {"--wait", "--wait-timeout", "1h"}, {"--direct"}, {"--json"}} {
		args := append([]string{"publish", "--topic", "updates", "--message", "hi"}, extra...)
		t.Run(strings.Join(args, " ")+" exits 3 and makes nothing", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "typo")
			r := run(t, dir, "", args...)
			if r.code != cmdutil.ExitNotFound || r.stdout != "" || !strings.Contains(r.stderr, "nothing has run with state dir "+dir+" yet (it does not exist)") ||
				!strings.Contains(r.stderr, "nothing was queued") || !strings.Contains(r.stderr, "`socks serve --state-dir "+dir+"` makes it") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 3, nothing, and that nothing ran there, nothing was queued and serve makes it", r.code, r.stdout, r.stderr)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the state dir was made (%v)", err)
			}
		})
	}
	t.Run("--as needs no state dir", func(t *testing.T) {
		r := run(t, filepath.Join(t.TempDir(), "typo"), "", "publish", "--topic", "updates", "--message", "hi", "--as", "sns")
		if r.code != 0 || r.stdout == "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and what to send", r.code, r.stdout, r.stderr)
		}
	})
}

func TestDashDashVersionIsTheVersionCommand(t *testing.T) {
	// `socks --version`, the first thing many try, was an unknown flag.
	want := run(t, t.TempDir(), "", "version")
	for _, flag := range []string{"--version", "-v"} {
		r := run(t, t.TempDir(), "", flag)
		if r.code != 0 || r.stdout != want.stdout || r.stdout != "socks 1.2.3 (abc) go1.26\n" {
			t.Errorf("socks %s: exit %d, stdout %q, stderr %q; want 0 and %q", flag, r.code, r.stdout, r.stderr, want.stdout)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	r := run(t, t.TempDir(), "", "version", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"version":"1.2.3"`) {
		t.Fatalf("version --json: %q", r.stdout)
	}
}

func TestEveryCommandHasAnExample(t *testing.T) {
	r := run(t, t.TempDir(), "", "__complete", "")
	if r.code != 0 {
		t.Fatalf("completion: %d %s", r.code, r.stderr)
	}
	for _, c := range []string{"chatter", "config", "demo", "listen", "publish", "serve", "version"} {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("completion does not offer %q", c)
		}
	}
	ios, _, _, _ := iostreams.Test()
	top := root.NewCmdRoot(&cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			// help is cobra's; completion's shell verbs are cobra's too
			// and explain their use in their long help.
			if sub.Hidden || sub.Name() == "help" || c.Name() == "completion" {
				continue
			}
			path := strings.Fields(strings.TrimPrefix(sub.CommandPath(), "socks "))
			h := run(t, t.TempDir(), "", append(path, "--help")...)
			if h.code != 0 || !strings.Contains(h.stdout, "Examples:") {
				t.Errorf("socks %s --help has no examples (exit %d)", strings.Join(path, " "), h.code)
			}
			walk(sub)
		}
	}
	walk(top)
}

func TestCompletionScriptGoesToStdout(t *testing.T) {
	r := run(t, t.TempDir(), "", "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "bash completion") {
		t.Fatalf("completion bash: exit %d, stdout %.80q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestConfigSaysWhereTheBackendCameFrom(t *testing.T) {
	r := run(t, t.TempDir(), "", "config")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "backend\tlocal\tdefault\n") {
		t.Fatalf("config: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestNoColorHoldsForWhatGoesToATerminalStderr(t *testing.T) {
	for _, noColor := range []bool{false, true} {
		ios, _, out, errOut := iostreams.Test()
		ios.SetTTY(false, false, true)
		ios.SetNoColor(noColor)
		env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": t.TempDir()}
		f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
		if code := commands.Run(context.Background(), f, []string{"chatter", "issue", "--geek", "alice"}); code != 0 {
			t.Fatalf("NO_COLOR=%v: exit %d, stderr %q", noColor, code, errOut)
		}
		if !strings.HasPrefix(out.String(), "sc_") || !strings.Contains(errOut.String(), "chatter ID for") {
			t.Fatalf("NO_COLOR=%v: stdout %q, stderr %q", noColor, out, errOut)
		}
		if styled := strings.Contains(errOut.String(), "\x1b["); styled == noColor {
			t.Errorf("NO_COLOR=%v: stderr styled=%v: %q", noColor, styled, errOut)
		}
	}
}

func TestAConfigProfileSelectsTheSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	body := "[profiles.staging]\nbackend = \"aws\"\nregion = \"eu-west-1\"\nstack = \"staging\"\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "", "--config", file, "--config-profile", "staging", "config")
	if r.code != 0 {
		t.Fatalf("config: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"backend\taws\tprofile staging\n", "profile\tstaging\n", "stack\tstaging\tprofile staging\n", "tables\tstaging-connections"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, dir, "", "--config", file, "--config-profile", "nope", "config")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown config profile "nope"`) {
		t.Errorf("an unknown profile: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestABrokenConfigFileIsNotAUsageMistake: after an error in the config
// file, "Run 'socks config --help' for usage." sent the user to flags
// that cannot fix it. The error names the file; the exit code stays 2.
func TestABrokenConfigFileIsNotAUsageMistake(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	unreadable := filepath.Join(dir, "a-directory.toml")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, want string
	}{
		{"a TOML syntax error", write("syntax.toml", "[profiles.dev\nbackend = \"aws\"\n"), "line 2"},
		{"an unknown setting", write("unknown.toml", "[profiles.dev]\nbakend = \"aws\"\n"), "unknown setting"},
		{"a setting of the wrong type", write("type.toml", "[profiles.dev]\nbackend = 3\n"), "backend must be"},
		{"a file that is missing", filepath.Join(dir, "nope.toml"), "does not exist"},
		{"a file nested too deep", write("deep.toml", "[profiles.dev]\nx = "+strings.Repeat("{a=", 40)+"1"+strings.Repeat("}", 40)+"\n"), "line 2: nested more than 32 deep"},
		{"a file of keys with long names", write("names.toml", "[profiles."+strings.Repeat("d", 40000)+"]\n"+strings.Repeat("x = 1\n", 1000)), "the names of its keys"},
		{"a file that cannot be read", unreadable, "config file"},
	} {
		for _, args := range [][]string{{"config"}, {"subs", "list"}} {
			t.Run(tc.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				r := run(t, dir, "", append([]string{"--config", tc.file}, args...)...)
				if r.code != cmdutil.ExitUsage {
					t.Errorf("exit %d; want %d", r.code, cmdutil.ExitUsage)
				}
				if !strings.HasPrefix(r.stderr, "socks: config file "+tc.file) || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("stderr %q; want an error naming the file and saying %q", r.stderr, tc.want)
				}
				if strings.Contains(r.stderr, "--help") {
					t.Errorf("stderr %q has a usage hint", r.stderr)
				}
				noGoInternals(t, r.stderr)
			})
		}
	}
}

// TestAnEnvironmentValueRefusedIsNotAUsageMistake: a value of an
// environment variable socks cannot take ($SOCKS_ATTEMPT_TIMEOUT,
// $SOCKS_BACKEND, $SOCKS_EVENT_MAPPING) came with "Run 'socks config
// --help' for usage.", though no flag fixes it, as for a broken config
// file. The error names the variable; the exit code stays 2.
func TestAnEnvironmentValueRefusedIsNotAUsageMistake(t *testing.T) {
	for _, tc := range []struct {
		env, value, want string
	}{
		{"SOCKS_ATTEMPT_TIMEOUT", "5", `$SOCKS_ATTEMPT_TIMEOUT "5" is not a duration`},
		{"SOCKS_ATTEMPT_TIMEOUT", "0s", `$SOCKS_ATTEMPT_TIMEOUT "0s" must be above 0`},
		{"SOCKS_BACKEND", "awz", `unknown backend "awz" ($SOCKS_BACKEND)`},
		{"SOCKS_EVENT_MAPPING", `{"topics":[]}`, "$SOCKS_EVENT_MAPPING"},
	} {
		for _, args := range [][]string{{"config"}, {"subs", "list"}} {
			t.Run(tc.env+"="+tc.value+"/"+strings.Join(args, " "), func(t *testing.T) {
				ios, _, _, errOut := iostreams.Test()
				env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": t.TempDir(), tc.env: tc.value}
				f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
				code := commands.Run(context.Background(), f, args)
				if code != cmdutil.ExitUsage {
					t.Errorf("exit %d; want %d", code, cmdutil.ExitUsage)
				}
				if !strings.Contains(errOut.String(), tc.want) {
					t.Errorf("stderr %q; want it to say %q", errOut, tc.want)
				}
				if strings.Contains(errOut.String(), "--help") {
					t.Errorf("stderr %q has a usage hint", errOut)
				}
			})
		}
	}
}

// TestABadSettingIsBadInputWhereverItCameFrom: an endpoint that is not a
// URL, or a region that is not a region name, exited 1 (a broken
// environment), where README's exit codes say 2 for bad flags or input
// and an unknown backend, from the same places, exited 2. A setting is
// input wherever it was given: by a flag (with the usage hint), a
// variable or a profile (without: no flag of the command is wrong).
func TestABadSettingIsBadInputWhereverItCameFrom(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte("[profiles.endpoint]\nbackend = \"aws\"\nregion = \"eu-west-1\"\nendpoint_url = \"localhost:8000\"\n"+
		"[profiles.region]\nbackend = \"aws\"\nregion = \"eu.west-1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		want     string
		wantHint bool
	}{
		{name: "an endpoint by flag", args: []string{"--backend", "aws", "--region", "eu-west-1", "--endpoint-url", "localhost:8000"}, want: `bad --endpoint-url "localhost:8000"`, wantHint: true},
		{name: "an endpoint by variable", args: []string{"--backend", "aws", "--region", "eu-west-1"}, env: map[string]string{"SOCKS_ENDPOINT_URL": "localhost:8000"}, want: `bad $SOCKS_ENDPOINT_URL "localhost:8000"`},
		{name: "an SQS endpoint by variable", args: []string{"--backend", "aws", "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:1"}, env: map[string]string{"SOCKS_SQS_ENDPOINT_URL": "127.0.0.1:9324"}, want: `bad $SOCKS_SQS_ENDPOINT_URL "127.0.0.1:9324"`},
		{name: "an endpoint in a profile", args: []string{"--config", file, "--config-profile", "endpoint"}, want: `bad endpoint_url of profile endpoint in config file ` + file},
		{name: "a region by flag", args: []string{"--backend", "aws", "--region", "eu.west-1"}, want: `AWS region "eu.west-1" is not a region name`, wantHint: true},
		{name: "a region by SOCKS_REGION", args: []string{"--backend", "aws"}, env: map[string]string{"SOCKS_REGION": "eu.west-1"}, want: "check $SOCKS_REGION"},
		{name: "a region by AWS_REGION", args: []string{"--backend", "aws"}, env: map[string]string{"AWS_REGION": "eu.west-1"}, want: "check $AWS_REGION"},
		{name: "a region in a profile", args: []string{"--config", file, "--config-profile", "region"}, want: "check region of profile region in config file " + file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, out, errOut := iostreams.Test()
			env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": t.TempDir()}
			maps.Copy(env, tc.env)
			f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
			code := commands.Run(context.Background(), f, append(tc.args, "subs", "stats"))
			if code != cmdutil.ExitUsage || out.Len() != 0 {
				t.Errorf("exit %d, stdout %q; want %d and nothing", code, out, cmdutil.ExitUsage)
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q; want it to say %q", errOut, tc.want)
			}
			if hint := strings.Contains(errOut.String(), "--help"); hint != tc.wantHint {
				t.Errorf("stderr %q: usage hint %v; want %v", errOut, hint, tc.wantHint)
			}
		})
	}
}

// noGoInternals fails when an error message shows Go internals rather than
// words for the user.
func noGoInternals(t *testing.T, msg string) {
	t.Helper()
	for _, leak := range []string{"json: cannot unmarshal", "Go struct", "Go value", "goroutine ", "panic:", "runtime error", "invalid character", "float64", "time: ", "strconv."} {
		if strings.Contains(msg, leak) {
			t.Errorf("the message shows Go internals (%q): %s", leak, msg)
		}
	}
}

func TestACommandCutShortByCtrlCExitsInterrupted(t *testing.T) {
	// Ctrl-C cancels the context; what fails then fails because of it,
	// whatever error it returns (doctor's checks, an interrupted go build
	// in deploy, an AWS call): the answer is 130 and "interrupted", not a
	// diagnosis made of cut-short checks.
	ios, _, out, errOut := iostreams.Test()
	env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": t.TempDir()}
	f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code := commands.Run(ctx, f, []string{"doctor"})
	if code != cmdutil.ExitInterrupted || errOut.String() != "socks: interrupted\n" || out.String() != "" {
		t.Errorf("doctor after Ctrl-C: exit %d, stdout %q, stderr %q; want 130, nothing, socks: interrupted", code, out, errOut)
	}
}

// closedStdout fails every write as a stdout whose reader has gone does.
type closedStdout struct{}

func (closedStdout) Write([]byte) (int, error) {
	return 0, &iostreams.ClosedPipeError{Stream: "standard output", Err: syscall.EPIPE}
}

func TestAClosedStdoutEndsQuietlyWith141(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	ios.Out = closedStdout{}
	f := &cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }, Now: time.Now}
	if code := commands.Run(context.Background(), f, []string{"version", "--json"}); code != cmdutil.ExitClosedPipe || errOut.Len() != 0 {
		t.Errorf("exit %d, stderr %q; want 141 and nothing said", code, errOut)
	}
}

// chatter issue --json says the topics an ID is limited to, and leaves
// the key out for an ID of every topic, as chatter list --json does.
func TestChatterIssueJSONNamesOnlyLimitedTopics(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"chatter", "issue", "--geek", "alice", "--json"}, nil},
		{[]string{"chatter", "issue", "--geek", "alice", "--topics", "updates,news", "--json"}, []string{"news", "updates"}},
	} {
		r := run(t, dir, "", tc.args...)
		var got map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
			t.Fatalf("%v: exit %d, stdout %q", tc.args, r.code, r.stdout)
		}
		raw, has := got["topics"]
		if tc.want == nil {
			if has {
				t.Errorf("%v: topics %v; want the key left out", tc.args, raw)
			}
			continue
		}
		list, _ := raw.([]any)
		var topics []string
		for _, v := range list {
			s, _ := v.(string)
			topics = append(topics, s)
		}
		slices.Sort(topics)
		if !slices.Equal(topics, tc.want) {
			t.Errorf("%v: topics %v; want %v", tc.args, raw, tc.want)
		}
	}
}

// TestAMissingTableNamesWhereTheStackCameFrom: a table that does not
// exist said "check --stack and --region" whatever named the stack; a
// user who had set $SOCKS_STACK, or a profile's stack, looked for a flag
// never given. It names the setting as the user set it.
func TestAMissingTableNamesWhereTheStackCameFrom(t *testing.T) {
	// DynamoDB and SQS on a server that knows no table or queue.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": dir + "/aws-config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/aws-credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_DYNAMODB": "", "AWS_ENDPOINT_URL_SQS": "",
		"AWS_MAX_ATTEMPTS": "1",
	} {
		t.Setenv(k, v) // read by the AWS SDK, not through the Factory
	}
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte("[profiles.prod]\nbackend = \"aws\"\nregion = \"eu-west-1\"\nstack = \"prod\"\nendpoint_url = \""+srv.URL+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"the flag", []string{"--backend", "aws", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--stack", "prod"}, nil, "check --stack and --region"},
		{"the variable", []string{"--backend", "aws", "--endpoint-url", srv.URL}, map[string]string{"SOCKS_STACK": "prod", "AWS_REGION": "eu-west-1"}, "check $SOCKS_STACK and $AWS_REGION"},
		{"the profile", []string{"--config", file, "--config-profile", "prod"}, nil, "check stack and region of profile prod in config file " + file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, errOut := iostreams.Test()
			env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": t.TempDir()}
			maps.Copy(env, tc.env)
			f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now}
			code := commands.Run(context.Background(), f, append(tc.args, "subs", "list"))
			if code != cmdutil.ExitError || !strings.Contains(errOut.String(), "does not exist: run `socks provision`, or "+tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.want)
			}
		})
	}
}

// TestTheDeadLetterHelpNamesOnlyCommandsThatExist: the dlq commands'
// help said the dead letters are held by "a dlq list, show, redrive or
// purge, status or doctor", and socks has no status command: a newcomer
// looked for it. Every command such a list names must be one.
func TestTheDeadLetterHelpNamesOnlyCommandsThatExist(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	top := root.NewCmdRoot(&cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }})
	list := regexp.MustCompile(`\(a\s+dlq\s+list,\s+show,\s+redrive\s+or\s+purge,([a-z ,\n]*)\)`)
	found := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, m := range list.FindAllStringSubmatch(c.Long, -1) {
			found++
			for _, name := range strings.FieldsFunc(strings.ReplaceAll(m[1], " or ", ","), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
				if name == "or" {
					continue
				}
				if sub, _, err := top.Find([]string{name}); err != nil || sub == top {
					t.Errorf("socks %s --help names %q among the commands that hold dead letters; socks has no such command", strings.TrimPrefix(c.CommandPath(), "socks "), name)
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(top)
	if found == 0 {
		t.Fatal("no help names the commands that hold dead letters: the pattern no longer matches the dlq help")
	}
}

// TestDemoRefusesTheGlobalFlagsItWouldIgnore: `socks demo --backend aws`
// and `socks demo --state-dir X` ran the throwaway local stack all the
// same, without a word, as if the flag had been honoured. The demo
// refuses any global flag, before it starts anything, and says what to
// run for a stack that lasts.
func TestDemoRefusesTheGlobalFlagsItWouldIgnore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kept")
	for _, tc := range []struct {
		args []string
		flag string // named in the error
	}{
		{[]string{"demo", "--backend", "aws"}, "--backend"},
		{[]string{"demo", "--state-dir", dir}, "--state-dir"},
		{[]string{"--state-dir", dir, "demo", "--json"}, "--state-dir"},
		{[]string{"demo", "--region", "eu-west-1"}, "--region"},
		{[]string{"demo", "--config-profile", "staging"}, "--config-profile"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, t.TempDir(), "", tc.args...)
			if r.code != cmdutil.ExitUsage || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and nothing on stdout", r.code, r.stdout, r.stderr)
			}
			for _, w := range []string{tc.flag, "throwaway local stack", "socks serve", "socks publish"} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not say %q", r.stderr, w)
				}
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the state dir was made (%v)", err)
			}
		})
	}
}

// TestHelpTextFitsAnEightyColumnTerminal: a --help paragraph edited in
// place kept a line of 90 to 127 columns (publish, listen, deploy, bench,
// provision), which an 80-column terminal breaks mid-word. Every line of
// every command's long help fits in 80; examples may not (a command line
// is not wrapped), and cobra's own completion help is its own.
func TestHelpTextFitsAnEightyColumnTerminal(t *testing.T) {
	checked := 0
	eachCommand(func(c *cobra.Command) bool {
		if c.Name() == "completion" && c.HasParent() && !c.Parent().HasParent() {
			return false
		}
		for i, line := range strings.Split(c.Long, "\n") {
			if n := len([]rune(line)); n > 80 {
				t.Errorf("%s --help, line %d of its description: %d columns (at most 80): %q", c.CommandPath(), i+1, n, line)
			}
			checked++
		}
		return true
	})
	if checked < 100 {
		t.Fatalf("only %d lines of help checked: the walk missed the commands", checked)
	}
}

// TestAFlagWhoseDefaultIsZeroSaysWhatThatMeans: cobra prints no default
// for a number or duration flag left at zero, so "--count int  exit 0
// after this many messages" left a newcomer to guess what listen does
// without it (it listens on), and "--timeout duration" whether it waits
// for ever. Each such flag says what zero, or leaving it out, does:
// "(0: ...)" or "(default: ...)" in its usage.
func TestAFlagWhoseDefaultIsZeroSaysWhatThatMeans(t *testing.T) {
	checked := 0
	eachCommand(func(c *cobra.Command) bool {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			switch f.Value.Type() {
			case "int", "int64", "uint", "float64", "duration":
			default:
				return
			}
			if f.Hidden || (f.DefValue != "0" && f.DefValue != "0s") {
				return
			}
			checked++
			if !strings.Contains(f.Usage, "0:") && !strings.Contains(f.Usage, "(default") && !strings.Contains(f.Usage, "default:") {
				t.Errorf("%s --%s: %q says not what it does when left at 0", c.CommandPath(), f.Name, f.Usage)
			}
		})
		return true
	})
	if checked < 3 {
		t.Fatalf("only %d flags checked: the walk missed the commands", checked)
	}
}

// TestDemoHelpListsNoGlobalFlags: demo refuses the global flags (exit 2,
// "Run 'socks demo --help' for usage"), and its help listed them all
// under "Global Flags". It lists none; publish's help still does.
func TestDemoHelpListsNoGlobalFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd   string
		lists bool
	}{{"demo", false}, {"publish", true}} {
		r := run(t, t.TempDir(), "", tc.cmd, "--help")
		if r.code != 0 {
			t.Fatalf("%s --help: exit %d, %s", tc.cmd, r.code, r.stderr)
		}
		if got := strings.Contains(r.stdout, "Global Flags:") && strings.Contains(r.stdout, "--state-dir string"); got != tc.lists {
			t.Errorf("socks %s --help lists the global flags: %v; want %v:\n%s", tc.cmd, got, tc.lists, r.stdout)
		}
		if !strings.Contains(r.stdout, "Exit codes:") || !strings.Contains(r.stdout, "--json") {
			t.Errorf("socks %s --help lost its own flags or the exit codes:\n%s", tc.cmd, r.stdout)
		}
	}
}

// TestNoHelpHasTwoSectionsOfOneTitle: listen's help had its own "Exit
// codes:" and then, from the root, every command's "Exit codes:": two
// sections of one title, the second seeming to take back the first
// (listen's 0 on Ctrl-C, the root's 130). Its own is "Exit codes of
// listen:".
func TestNoHelpHasTwoSectionsOfOneTitle(t *testing.T) {
	checked := 0
	eachCommand(func(c *cobra.Command) bool {
		var b strings.Builder
		c.SetOut(&b)
		c.HelpFunc()(c, nil)
		seen := map[string]bool{}
		for line := range strings.SplitSeq(b.String(), "\n") {
			if strings.HasSuffix(line, ":") && line != "" && line[0] != ' ' {
				if seen[line] {
					t.Errorf("%s --help has two sections %q", c.CommandPath(), line)
				}
				seen[line] = true
			}
		}
		checked++
		return true
	})
	if checked < 20 {
		t.Fatalf("only %d commands checked: the walk missed them", checked)
	}
}

// eachCommand calls fn for every command of a fresh socks tree, the root
// first, and for the commands under one only when fn returned true.
func eachCommand(fn func(c *cobra.Command) bool) {
	ios, _, _, _ := iostreams.Test()
	top := root.NewCmdRoot(&cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !fn(c) {
			return
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(top)
}
