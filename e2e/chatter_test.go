package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/refusing"
)

const requirePythonEnv = "SOCKS_E2E_REQUIRE_PYTHON"

// snippet returns the code block of docs/chatter.md that follows the
// marker <!-- snippet: NAME -->: the tests run what the page shows.
func snippet(t *testing.T, name string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(moduleDir, "docs", "chatter.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- snippet: " + regexp.QuoteMeta(name) + " -->\n```[a-z]+\n(.*?)\n```")
	m := re.FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/chatter.md has no code block after <!-- snippet: %s -->", name)
	}
	return string(m[1])
}

// snippetRunner returns a function that runs a snippet with its driver
// and returns what it printed, or skips (fails under REQUIRE) when the
// runtime or its packages are missing.
type snippetRunner func(t *testing.T, env []string, geek, stack string, ttlSeconds int) string

// nodeSDK returns node and testdata/chatter-node, whose node_modules hold
// the AWS SDK for JavaScript v3 clients the tests run, or skips (fails
// under SOCKS_E2E_REQUIRE_NODE=1) when either is missing.
func nodeSDK(t *testing.T) (node, dir string) {
	node, err := exec.LookPath("node")
	dir = filepath.Join(moduleDir, "testdata", "chatter-node")
	for _, client := range []string{"client-dynamodb", "client-apigatewaymanagementapi"} {
		if err == nil && !fileExists(filepath.Join(dir, "node_modules", "@aws-sdk", client, "package.json")) {
			err = fmt.Errorf("%s has no node_modules/@aws-sdk/%s", dir, client)
		}
	}
	if err != nil {
		withoutNode(t, fmt.Sprintf("the AWS SDK for JavaScript cannot run: %v", err), npmCI("chatter-node"))
	}
	return node, dir
}

// pythonSDK returns the Python of .cache/python-boto3, with boto3, and a
// scratch dir to run it in, or skips (fails under
// SOCKS_E2E_REQUIRE_PYTHON=1) when it is missing.
func pythonSDK(t *testing.T) (python, dir string) {
	python = filepath.Join(moduleDir, ".cache", "python-boto3", "bin", "python")
	if !fileExists(python) {
		msg := "boto3 cannot run: " + python + " is missing; run scripts/test, or: python3 -m venv .cache/python-boto3 && .cache/python-boto3/bin/pip install -r testdata/chatter-python/requirements.txt"
		if os.Getenv(requirePythonEnv) == "1" {
			t.Fatalf("%s (%s=1)", msg, requirePythonEnv)
		}
		t.Skip(msg)
	}
	return python, t.TempDir()
}

func nodeSnippet(t *testing.T) snippetRunner {
	node, dir := nodeSDK(t)
	code := snippet(t, "node") + `
const [geek, stack, ttl] = process.argv.slice(2);
console.log(await issueChatterId(geek, { stack, ttlSeconds: Number(ttl) }));
`
	// Inside the package folder, so that the import finds node_modules.
	file := filepath.Join(dir, ".snippet-"+randomHex(4)+".mjs")
	if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
	return func(t *testing.T, env []string, geek, stack string, ttl int) string {
		return runSnippet(t, env, dir, node, file, geek, stack, fmt.Sprint(ttl))
	}
}

func pythonSnippet(t *testing.T) snippetRunner {
	python, _ := pythonSDK(t)
	code := snippet(t, "python") + `


if __name__ == "__main__":
    import sys

    print(issue_chatter_id(sys.argv[1], stack=sys.argv[2], ttl_seconds=int(sys.argv[3])))
`
	file := filepath.Join(t.TempDir(), "snippet.py")
	if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T, env []string, geek, stack string, ttl int) string {
		return runSnippet(t, env, filepath.Dir(file), python, file, geek, stack, fmt.Sprint(ttl))
	}
}

func runSnippet(t *testing.T, env []string, dir, bin string, args ...string) string {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr: %s", filepath.Base(bin), filepath.Base(args[0]), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestChatterIDsFromNodeAndPython runs the snippets of docs/chatter.md
// against DynamoDB Local: `socks serve --backend aws` accepts the chatter
// IDs they issue at $connect, and refuses a wrong or an expired one.
func TestChatterIDsFromNodeAndPython(t *testing.T) {
	t.Parallel()
	runners := map[string]func(*testing.T) snippetRunner{"Node": nodeSnippet, "Python": pythonSnippet}
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("chatter")}
	dynamoURL, _ := emulators(t)
	// The SDKs' own endpoint variable for DynamoDB; everything else goes
	// to a loopback port that refuses connections, never to AWS.
	env := append(append([]string{}, s.env...), "AWS_ENDPOINT_URL_DYNAMODB="+dynamoURL, "AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL="+refusing.URL(t))
	s.provision()
	srv, _ := s.serve()

	for _, lang := range []string{"Node", "Python"} {
		t.Run(lang, func(t *testing.T) {
			run := runners[lang](t)
			geek := lang + "Geek"
			secret := run(t, env, geek, s.name, 3600)
			if !regexp.MustCompile(`^sc_[A-Za-z0-9_-]{32}$`).MatchString(secret) {
				t.Fatalf("the snippet printed %q; want sc_ and 32 URL-safe characters", secret)
			}
			t.Run("its ID is accepted at $connect", func(t *testing.T) {
				conn := mustDial(t, srv.connectURL(geek, secret, "updates"))
				conn.Close()
			})
			t.Run("socks lists it with the fingerprint and expiry the snippet wrote", func(t *testing.T) {
				var ids []struct {
					Geek        string    `json:"geek"`
					IssuedAt    time.Time `json:"issuedAt"`
					ExpiresAt   time.Time `json:"expiresAt"`
					Fingerprint string    `json:"fingerprint"`
					Expired     bool      `json:"expired"`
				}
				out := s.must("chatter", "list", "--geek", geek, "--json")
				if err := json.Unmarshal([]byte(out), &ids); err != nil || len(ids) != 1 {
					t.Fatalf("chatter list (%v):\n%s", err, out)
				}
				sum := sha256.Sum256([]byte(secret))
				c := ids[0]
				if c.Geek != geek || c.Expired || c.Fingerprint != hex.EncodeToString(sum[:])[:12] || c.ExpiresAt.Sub(c.IssuedAt) != time.Hour {
					t.Errorf("listed %+v; want %s's, valid, expiring an hour after issue, fingerprint of the secret's SHA-256", c, geek)
				}
			})
			t.Run("a wrong secret is refused", func(t *testing.T) {
				last := "A"
				if strings.HasSuffix(secret, "A") {
					last = "B"
				}
				wrong := secret[:len(secret)-1] + last
				refused(t, srv.connectURL(geek, wrong, "updates"), "chatter ID refused")
			})
			t.Run("its ID is refused for another geek", func(t *testing.T) {
				refused(t, srv.connectURL("Someone"+geek, secret, "updates"), "chatter ID refused")
			})
			t.Run("an expired one is refused", func(t *testing.T) {
				// Expired over five years ago: DynamoDB Local's TTL
				// sweeper (every 10 s) would delete a recently expired
				// item at any moment, and socks would rightly call the
				// ID unknown; TTL leaves alone what expired over five
				// years ago.
				expired := run(t, env, geek, s.name, -6*365*24*3600)
				refused(t, srv.connectURL(geek, expired, "updates"), "chatter ID expired")
			})
		})
	}
}

// refused dials rawURL and checks for a 403 whose body contains phrase.
func refused(t *testing.T, rawURL, phrase string) {
	t.Helper()
	conn, resp, err := dial(t, rawURL)
	if err == nil {
		conn.Close()
		t.Fatalf("connected; want a 403 %q", phrase)
	}
	if resp == nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), phrase) {
		t.Fatalf("answer %d %q; want 403 containing %q", resp.StatusCode, body, phrase)
	}
}
