package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/socks-dev/socks/pubsub"
)

// fuzzCreds signs the requests of the SigV4 fuzz targets.
var fuzzCreds = Credentials{AccessKeyID: "AKSOCKSFUZZ", SecretAccessKey: "fuzz-secret"}

// fuzzNow is the gateway's clock in the SigV4 fuzz targets.
var fuzzNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// signedWire signs a request for method, target (a path and query) and
// body with fuzzCreds the way the SDK's Management API client does, and
// returns it as the bytes on the wire, or nil when no such request can be
// made.
func signedWire(method, target string, body []byte) []byte {
	req, err := http.NewRequestWithContext(context.Background(), method, "http://127.0.0.1:4510"+target, bytes.NewReader(body))
	if err != nil || req.URL.Host != "127.0.0.1:4510" || req.URL.Opaque != "" {
		return nil
	}
	sum := sha256.Sum256(body)
	c := aws.Credentials{AccessKeyID: fuzzCreds.AccessKeyID, SecretAccessKey: fuzzCreds.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hex.EncodeToString(sum[:]), "execute-api", "eu-west-1", fuzzNow); err != nil {
		return nil
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil
	}
	return wire.Bytes()
}

// serverSide reads wire as the gateway's HTTP server would, with its body.
func serverSide(wire []byte) (*http.Request, []byte, error) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		return nil, nil, err
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		return nil, nil, err
	}
	return r, body.Bytes(), nil
}

// sigV4Accepts reports whether the gateway's verifier accepts the request
// on wire, and its refusal.
func sigV4Accepts(wire []byte) (bool, error) {
	r, body, err := serverSide(wire)
	if err != nil {
		return false, err
	}
	auth, err := parseSigV4(r, fuzzCreds, fuzzNow)
	if err != nil {
		return false, err
	}
	if err := auth.verify(r, body, fuzzCreds); err != nil {
		return false, err
	}
	return true, nil
}

// FuzzSigV4AcceptsOnlyTheSignedRequest signs a Management API call with
// the SDK's signer, checks that the gateway's verifier accepts it as sent,
// then changes one byte of what was signed (method, path and query, Host,
// X-Amz-Date, the signature, the body): the verifier never accepts the
// changed request, and refuses it with one of its own fixed sentences.
func FuzzSigV4AcceptsOnlyTheSignedRequest(f *testing.F) {
	f.Add("POST", "/@connections/abc%3D", []byte(`{"n":1}`), uint8(0), uint16(3), byte(1))
	f.Add("GET", "/dev/@connections/x", []byte(nil), uint8(1), uint16(0), byte(0x20))
	f.Add("DELETE", "/@connections/a%2Fb?x=1&y=%20", []byte(nil), uint8(2), uint16(9), byte(0x7f))
	f.Add("POST", "/@connections/id", []byte("body"), uint8(3), uint16(40), byte(2))
	f.Add("POST", "/@connections/id", []byte("body"), uint8(4), uint16(5), byte(4))
	f.Add("POST", "/@connections/%E2%82%AC", []byte("é"), uint8(5), uint16(1), byte(0x80))
	f.Fuzz(func(t *testing.T, method, target string, body []byte, what uint8, pos uint16, flip byte) {
		if len(body) > pubsub.MaxMessageBytes || len(target) > 2048 {
			return
		}
		wire := signedWire(method, target, body)
		if wire == nil {
			return
		}
		if _, _, err := serverSide(wire); err != nil {
			return // not a request the gateway's server would hand on
		}
		if ok, err := sigV4Accepts(wire); !ok {
			t.Fatalf("%q: the signed request is refused: %v", wire, err)
		}
		flip |= 1 // a change, always
		tampered, ok := tamper(wire, what, int(pos), flip)
		if !ok || bytes.Equal(tampered, wire) {
			return
		}
		r, body2, err := serverSide(tampered)
		if err != nil {
			return // the server refuses it before any handler sees it
		}
		if sameSigned(t, wire, r, body2) {
			return // the change did not reach anything signed
		}
		accepted, err := sigV4Accepts(tampered)
		if accepted {
			t.Fatalf("the verifier accepted a tampered request:\nsigned:   %q\ntampered: %q", wire, tampered)
		}
		if !sigV4Refusals[err.Error()] {
			t.Fatalf("the refusal %q is not one of the verifier's own", err)
		}
	})
}

// FuzzSigV4AcceptsTheJSEmptyPostOnlyUnchanged changes one byte anywhere
// in the head of jsEmptyPost (the JavaScript SDK's empty post, which signs
// "content-length:0", a canonical request the verifier completes itself)
// and may add a body: the verifier accepts the result only if what was
// signed is unchanged (method, path, query, Host, the value of every
// signed header as SigV4 reads it, the Authorization fields and an empty
// body), and refuses it in its own words otherwise.
func FuzzSigV4AcceptsTheJSEmptyPostOnlyUnchanged(f *testing.F) {
	f.Add(uint16(5), byte(1), []byte(nil))
	f.Add(uint16(60), byte(0x20), []byte(nil))
	f.Add(uint16(70), byte(2), []byte("x"))
	f.Add(uint16(700), byte(4), []byte(nil))
	f.Fuzz(func(t *testing.T, pos uint16, flip byte, body []byte) {
		wire := []byte(jsEmptyPost)
		head := len(wire) - len("\r\n\r\n")
		wire[int(pos)%head] ^= flip | 1
		if len(body) > 0 {
			wire = bytes.Replace(wire, []byte("Content-Length: 0\r\n"), fmt.Appendf(nil, "Content-Length: %d\r\n", len(body)), 1)
			wire = append(wire, body...)
		}
		r, got, err := serverSide(wire)
		if err != nil {
			return // the server refuses it before any handler sees it
		}
		err = jsVerifies(t, wire)
		if err == nil {
			if o, _, _ := serverSide([]byte(jsEmptyPost)); !sameSignedParts(o, r) || len(got) != 0 {
				t.Fatalf("the verifier accepted a changed request:\nsigned:  %q\nchanged: %q", jsEmptyPost, wire)
			}
			return
		}
		if !sigV4Refusals[err.Error()] {
			t.Fatalf("the refusal %q is not one of the verifier's own", err)
		}
	})
}

// sameSignedParts reports whether r carries what o's signature covers, as
// SigV4 reads it: the method, path, query, Host, Authorization fields and
// the value of each header o signed, with runs of spaces as one. The
// content-length signed is the length of the body read (compared by the
// caller), whatever header framed it.
func sameSignedParts(o, r *http.Request) bool {
	if o.Method != r.Method || o.URL.EscapedPath() != r.URL.EscapedPath() || !reflect.DeepEqual(o.URL.Query(), r.URL.Query()) ||
		o.Host != r.Host || authFields(o) != authFields(r) {
		return false
	}
	_, signed, _ := strings.Cut(o.Header.Get("Authorization"), "SignedHeaders=")
	signed, _, _ = strings.Cut(signed, ",")
	value := func(r *http.Request, h string) string {
		var vs []string
		for _, v := range r.Header.Values(h) {
			vs = append(vs, strings.Join(strings.FieldsFunc(v, func(c rune) bool { return c == ' ' }), " "))
		}
		return strings.Join(vs, ",")
	}
	for _, h := range strings.Split(signed, ";") {
		if h != "host" && h != "content-length" && value(o, h) != value(r, h) {
			return false
		}
	}
	return true
}

// tamper changes one byte of the part what picks of a signed request's
// wire bytes: 0 the method, 1 the request target, 2 the Host, 3 the
// X-Amz-Date, 4 the signature, 5 the body (its length is kept).
func tamper(wire []byte, what uint8, pos int, flip byte) ([]byte, bool) {
	headEnd := bytes.Index(wire, []byte("\r\n\r\n"))
	if headEnd < 0 {
		return nil, false
	}
	lineEnd := func(from int) int { return from + bytes.Index(wire[from:], []byte("\r\n")) }
	after := func(s string) int {
		i := bytes.Index(wire[:headEnd], []byte(s))
		if i < 0 {
			return -1
		}
		return i + len(s)
	}
	var start, end int
	switch what % 6 {
	case 0:
		start, end = 0, bytes.IndexByte(wire, ' ')
	case 1:
		start = bytes.IndexByte(wire, ' ') + 1
		end = start + bytes.IndexByte(wire[start:], ' ')
	case 2, 3, 4:
		start = after(map[uint8]string{2: "\r\nHost: ", 3: "\r\nX-Amz-Date: ", 4: "Signature="}[what%6])
		if start < 0 {
			return nil, false
		}
		end = lineEnd(start)
	case 5:
		start, end = headEnd+4, len(wire)
	}
	if end <= start {
		return nil, false
	}
	out := bytes.Clone(wire)
	out[start+pos%(end-start)] ^= flip
	return out, true
}

// sameSigned reports whether r, read from a tampered copy of wire, still
// carries what the signature over wire covers, so that accepting it is
// right: the same method, escaped path, query, Host, X-Amz-Date,
// signature and body. The query is compared as the server reads it
// (r.URL.Query()), as SigV4 signs it: "a=" and "a", or "a=1&b=2" and
// "b=2&a=1", are one query to the signature (on AWS too) and to the gateway.
func sameSigned(t *testing.T, wire []byte, r *http.Request, body []byte) bool {
	t.Helper()
	o, obody, err := serverSide(wire)
	if err != nil {
		t.Fatal(err)
	}
	return o.Method == r.Method && o.URL.EscapedPath() == r.URL.EscapedPath() && reflect.DeepEqual(o.URL.Query(), r.URL.Query()) &&
		o.Host == r.Host && o.Header.Get("X-Amz-Date") == r.Header.Get("X-Amz-Date") &&
		o.Header.Get("Authorization") == r.Header.Get("Authorization") && bytes.Equal(obody, body)
}

// FuzzSigV4RefusesForgedHeaders gives the verifier made-up Authorization
// and X-Amz-Date headers: it never panics, never accepts (the secret is
// not in them), and refuses with one of its own fixed sentences, so it
// never echoes them.
func FuzzSigV4RefusesForgedHeaders(f *testing.F) {
	wire := signedWire("POST", "/@connections/abc", []byte("x"))
	r, _, err := serverSide(wire)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"))
	f.Add("AWS4-HMAC-SHA256 Credential=AKSOCKSFUZZ/20260301/r/s/aws4_request, SignedHeaders=host, Signature=00", "20260301T120000Z")
	f.Add("AWS4-HMAC-SHA256 Credential=AKSOCKSFUZZ/20260301/r/s/aws4_request,SignedHeaders=,Signature=", "20260301T120000Z")
	f.Add("AWS4-HMAC-SHA256 Credential=AKSOCKSFUZZ/20260301///aws4_request, SignedHeaders=host;content-length;x-amz-date;x-amz-date, Signature=zz", "20260301T120000Z")
	f.Add("AWS4-HMAC-SHA256 a", "")
	f.Add("Bearer x", "20260301T120000Z")
	f.Fuzz(func(t *testing.T, authorization, date string) {
		r, err := http.NewRequestWithContext(context.Background(), "POST", "http://127.0.0.1:4510/@connections/abc", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", authorization)
		r.Header.Set("X-Amz-Date", date)
		auth, err := parseSigV4(r, fuzzCreds, fuzzNow)
		if err == nil {
			if err = auth.verify(r, []byte("x"), fuzzCreds); err == nil {
				// Only the genuine header may pass: it is the seed.
				if !sameAsSigned(r) {
					t.Fatalf("accepted a made-up signature: %q", authorization)
				}
				return
			}
		}
		if !sigV4Refusals[err.Error()] {
			t.Fatalf("the refusal %q is not one of the verifier's own", err)
		}
	})
}

// sigV4Refusals are the verifier's refusals: fixed words, so none can
// echo what the caller sent or show Go internals.
var sigV4Refusals = map[string]bool{
	"the request is not signed with AWS Signature Version 4":                      true,
	"the Authorization header is malformed":                                       true,
	"the access key is not this gateway's; use the key pair `socks config` names": true,
	"the request has no valid X-Amz-Date":                                         true,
	"the request was signed more than 15 minutes from now; check the clock":       true,
	"the request URL is malformed":                                                true,
	errBadSignature.Error():                                                       true,
}

// sameAsSigned reports whether r carries the headers of the genuine
// signed request of FuzzSigV4RefusesForgedHeaders's first seed, but for
// the spaces around the Authorization header's commas (which AWS allows).
func sameAsSigned(r *http.Request) bool {
	o, _, err := serverSide(signedWire("POST", "/@connections/abc", []byte("x")))
	return err == nil && authFields(o) == authFields(r) && o.Header.Get("X-Amz-Date") == r.Header.Get("X-Amz-Date")
}

// authFields returns r's Authorization header without the spaces around
// its commas.
func authFields(r *http.Request) string {
	parts := strings.Split(r.Header.Get("Authorization"), ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return strings.Join(parts, ",")
}

// FuzzManagementAPIAnswersInItsOwnWords sends the gateway's HTTP entry
// arbitrary requests for the @connections paths (any method, target,
// Host, Authorization and body), with and without credentials: it never
// panics and never answers 5xx; every refusal is one of API Gateway's
// (403, 405, 410, 413, 400) with {"message": ...} in words, and an error
// type header where API Gateway sends one; with credentials nothing
// unsigned gets past 403, and without them nothing reaches a connection
// unless its Host is a loopback one.
func FuzzManagementAPIAnswersInItsOwnWords(f *testing.F) {
	f.Add("POST", "/@connections/abc", "127.0.0.1:4510", "x", []byte("hello"), false)
	f.Add("GET", "/dev/@connections/a%2Fb", "localhost", "AWS4-HMAC-SHA256 x", []byte(nil), true)
	f.Add("DELETE", "/@connections/%zz", "[::1]:1", "x", []byte(nil), false)
	f.Add("PUT", "/@connections/", "127.0.0.1", "x", []byte("b"), false)
	f.Add("POST", "/@connections/x/../y", "evil.example", "x", bytes.Repeat([]byte("a"), pubsub.MaxMessageBytes+1), false)
	f.Add("GET", "/dev", "127.0.0.1", "", []byte(nil), false)
	f.Add("GET", "/other", "127.0.0.1", "", []byte(nil), false)
	f.Fuzz(func(t *testing.T, method, target, host, authorization string, body []byte, signed bool) {
		var raw bytes.Buffer
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
		if authorization != "" {
			fmt.Fprintf(&raw, "Authorization: %s\r\n", authorization)
		}
		fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body))
		raw.Write(body)
		r, err := http.ReadRequest(bufio.NewReader(&raw))
		if err != nil {
			return // the HTTP server answers 400 itself
		}
		opts := Options{Handler: newFakeHandler(), Stage: "dev", bodyWait: time.Second}
		if signed {
			opts.Credentials = &fuzzCreds
		}
		g, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		g.serveHTTP(w, r)
		status := w.Code
		switch status {
		case http.StatusOK, http.StatusNoContent:
			t.Fatalf("%s %s: %d, but there is no connection", method, target, status)
		case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusGone, http.StatusRequestEntityTooLarge, http.StatusBadRequest:
		case http.StatusUpgradeRequired, http.StatusNotFound:
			return // the WebSocket URL itself, or the site (none here)
		default:
			t.Fatalf("%s %s: answered %d", method, target, status)
		}
		var answer struct {
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || answer.Message == nil || *answer.Message == "" {
			t.Fatalf("%s %s: %d with body %q, not {\"message\": ...}", method, target, status, w.Body)
		}
		for _, leak := range []string{"%!", "runtime", "panic", "invalid URL escape", "parsing time"} {
			if strings.Contains(*answer.Message, leak) {
				t.Fatalf("%s %s: the answer %q shows Go internals", method, target, *answer.Message)
			}
		}
		if status != http.StatusMethodNotAllowed && w.Header().Get("X-Amzn-Errortype") == "" {
			t.Fatalf("%s %s: %d without X-Amzn-ErrorType", method, target, status)
		}
		if status == http.StatusGone && signed {
			// Past the signature check: only a request signed with the
			// secret gets there, and the fuzzer does not have it.
			t.Fatalf("%s %s: a request with Authorization %q got past the signature check", method, target, authorization)
		}
		if status == http.StatusGone && !loopbackHost(r.Host) {
			t.Fatalf("%s %s: an unsigned call for Host %q was looked up", method, target, r.Host)
		}
	})
}

// loopbackHost reports whether host (with or without a port) names this
// machine: localhost (any case, fully qualified or not) or a loopback
// address.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return strings.EqualFold(h, "localhost") || strings.EqualFold(h, "localhost.") || (ip != nil && ip.IsLoopback())
}

// FuzzFrameTrackerAgreesWithAWholeStreamParse feeds the frame tracker
// arbitrary bytes (client frames as they come off the socket) in chunks
// of fuzzed sizes: its verdict is the same however the stream is cut,
// and the same as a parse of the whole stream at once: refused exactly at
// the byte that completes the first length over the limit, or the length
// of 1 of a close frame, with the error that says which.
func FuzzFrameTrackerAgreesWithAWholeStreamParse(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, []byte{1, 3}, uint16(125))
	f.Add([]byte{0x82, 0xfe, 0x80, 0x01, 0, 0, 0, 0}, []byte{2}, uint16(32768))
	f.Add(append([]byte{0x82, 0x7f}, binary.BigEndian.AppendUint64(nil, 1<<63)...), []byte{}, uint16(1))
	f.Add([]byte{0x89, 0x00, 0x8a, 0x80, 9, 9, 9, 9, 0x88, 0x02, 3, 232}, []byte{5, 1, 1}, uint16(0))
	f.Add([]byte{0x81, 0x80, 1, 2, 3, 4, 0x88, 0x81, 1, 2, 3, 4, 7}, []byte{6, 0}, uint16(125))
	f.Add([]byte{0x88, 0xfe, 0x00, 0x01, 1, 2, 3, 4, 7}, []byte{}, uint16(125))
	f.Fuzz(func(t *testing.T, stream, cuts []byte, max uint16) {
		wantK, wantErr := wholeStreamParse(stream, uint64(max))
		i := 0
		next := func() int {
			if len(cuts) == 0 {
				return len(stream)
			}
			n := int(cuts[i%len(cuts)]) + 1
			i++
			return n
		}
		k, err := feed(stream, uint64(max), next)
		if !errors.Is(err, wantErr) || (wantErr != nil && k != wantK) || (wantErr == nil && k != len(stream)) {
			t.Fatalf("stream %x, cuts %v, max %d: consumed %d, err %v; a whole parse refuses with %v at %d", stream, cuts, max, k, err, wantErr, wantK)
		}
	})
}

// wholeStreamParse is RFC 6455 §5.2 on a whole stream: the offset of the
// byte completing the first payload length over max (errFrameTooBig) or
// of 1 in a close frame (errShortClose), and that error; nil when there is
// none.
func wholeStreamParse(s []byte, max uint64) (int, error) {
	for i := 0; ; {
		if i+1 >= len(s) {
			return 0, nil
		}
		isClose := s[i]&0x0f == 0x8
		masked, n := s[i+1]&0x80 != 0, uint64(s[i+1]&0x7f)
		end := i + 1 // the byte that completes the length
		switch n {
		case 126:
			end = i + 3
		case 127:
			end = i + 9
		}
		if end >= len(s) {
			return 0, nil
		}
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(s[i+2:]))
		case 127:
			n = binary.BigEndian.Uint64(s[i+2:])
		}
		if n > max {
			return end, errFrameTooBig
		}
		if isClose && n == 1 {
			return end, errShortClose
		}
		i = end + 1
		if masked {
			i += 4
		}
		if uint64(len(s)-i) < n {
			return 0, nil
		}
		i += int(n)
	}
}

// FuzzRouteKeyIsTheBodysAction routes any client text message as API
// Gateway's route selection expression $request.body.action does: to the
// action route named by the top-level key "action" (exactly that key; the
// last when it is repeated), when the message is a JSON object and that
// value a string naming a route; else to $default. Its testdata holds the
// messages once routed by "Action" or "ACTION" (a struct field's match).
func FuzzRouteKeyIsTheBodysAction(f *testing.F) {
	for _, s := range []string{
		`{"action":"subscribe","topics":["a"]}`, `{"action":"$connect"}`, `{"action":"$disconnect"}`,
		`{"action":"nope","action":"ping"}`, `{"action":["subscribe"]}`,
		`{"nested":{"action":"ping"}}`, `["action","ping"]`, `{"action":"ping"} x`, `{"action":"p\u0069ng"}`, ``,
	} {
		f.Add([]byte(s))
	}
	g, err := New(Options{Handler: newFakeHandler(), Routes: []string{"subscribe", "unsubscribe", "ping"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, want := g.routeKey(data), "$default"
		if a, ok := topLevelAction(data); ok && g.routes[a] {
			want = a
		}
		if got != want {
			t.Fatalf("%q: routed to %s; $request.body.action selects %s", data, got, want)
		}
	})
}

// topLevelAction walks a JSON object's top-level members and returns the
// last "action" string value, and whether data is one valid JSON object
// with one.
func topLevelAction(data []byte) (string, bool) {
	if !json.Valid(data) {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	action, found := "", false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", false
		}
		if tok == "action" {
			var s string
			found = json.Unmarshal(v, &s) == nil
			action = s
		}
	}
	return action, found
}

// FuzzAHandshakeReachesConnectOnlyIfItCanOpen sends a running gateway
// upgrade requests with any method, Upgrade, Connection,
// Sec-WebSocket-Version, Sec-WebSocket-Key and Origin (docs/reliability.md:
// a handshake that the upgrade would refuse anyway is refused before
// $connect, so no record is written for a connection that cannot open):
// whenever the $connect ran and accepted, the answer is 101, and the
// Origin was one the gateway allows.
func FuzzAHandshakeReachesConnectOnlyIfItCanOpen(f *testing.F) {
	const allowed = "http://ok.example"
	f.Add("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", "", "")
	f.Add("GET", "WebSocket", "keep-alive, Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", allowed, "")
	f.Add("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", "http://evil.example", "")
	f.Add("GET", "websocket", "Upgrade", "8", "dGhlIHNhbXBsZSBub25jZQ==", "", "")
	f.Add("POST", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", "", "")
	f.Add("GET", "websocket", "close", "13", "dGhlIHNhbXBsZSBub25jZQ==", "", "")
	f.Add("GET", "h2c", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", "", "")
	f.Add("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ", "", "")
	f.Add("GET", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAAAA==", "", "")
	f.Add("GET", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAAAB==", "", "")
	f.Add("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", "", "abc")
	h := newFakeHandler()
	g, err := New(Options{Handler: h, AllowOrigins: []string{allowed}})
	if err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	addr := ln.Addr().String()
	n := 0
	f.Fuzz(func(t *testing.T, method, upgrade, connection, version, key, origin, body string) {
		for _, v := range []string{method, upgrade, connection, version, key, origin} {
			if strings.ContainsAny(v, "\r\n") {
				return // another request, or none
			}
		}
		n++
		tag := fmt.Sprintf("hs%d", n)
		c, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(wait))
		var req bytes.Buffer
		fmt.Fprintf(&req, "%s /?tag=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: %s\r\nConnection: %s\r\nSec-WebSocket-Version: %s\r\nSec-WebSocket-Key: %s\r\n",
			method, tag, addr, upgrade, connection, version, key)
		if origin != "" {
			fmt.Fprintf(&req, "Origin: %s\r\n", origin)
		}
		if body != "" {
			fmt.Fprintf(&req, "Content-Length: %d\r\n", len(body))
		}
		req.WriteString("\r\n" + body)
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		if h.idOf(tag) == "" {
			return
		}
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("$connect ran for %q, answered %d (%v)", req.String(), status, err)
		}
		if o := strings.TrimSpace(origin); o != "" && o != allowed {
			t.Fatalf("$connect ran for the Origin %q", origin)
		}
	})
}
