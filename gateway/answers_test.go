package gateway

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/socks-dev/socks/pubsub"
)

// TestEveryManagementAPIAnswerCarriesARequestIDAndTheGatewaysID: "Every
// answer, refusals included, carries X-Amzn-RequestId and
// X-Socks-Gateway-Id" (docs/protocol.md, the Management API), as API
// Gateway sends a request ID with each of its answers. Each kind of
// answer, from a delivery to each refusal the gateway and --faults make,
// carries both, and no two answers the same request ID.
func TestEveryManagementAPIAnswerCarriesARequestIDAndTheGatewaysID(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})
	_, id := connect(t, h, addr)
	_, doomed := connect(t, h, addr)
	h500, h429 := newFakeHandler(), newFakeHandler()
	failing500, addr500 := start(t, h500, Options{Faults: injector(t, "post500=1")})
	_, id500 := connect(t, h500, addr500)
	failing429, addr429 := start(t, h429, Options{Faults: injector(t, "post429=1")})
	_, id429 := connect(t, h429, addr429)

	const signed = "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00"
	at := func(addr, id string) string { return "http://" + addr + "/@connections/" + url.PathEscape(id) }
	cases := []struct {
		name    string
		gw      *Gateway
		method  string
		url     string
		body    []byte
		headers map[string]string
		status  int
	}{
		{"a delivery", g, http.MethodPost, at(addr, id), []byte(`"hi"`), nil, http.StatusOK},
		{"a description", g, http.MethodGet, at(addr, id), nil, nil, http.StatusOK},
		{"a deletion", g, http.MethodDelete, at(addr, doomed), nil, nil, http.StatusNoContent},
		{"an unknown connection", g, http.MethodPost, at(addr, "nobody"), []byte(`"hi"`), nil, http.StatusGone},
		{"no Authorization", g, http.MethodPost, at(addr, id), []byte(`"hi"`), map[string]string{"Authorization": ""}, http.StatusForbidden},
		{"a Host that is not loopback", g, http.MethodPost, at(addr, id), []byte(`"hi"`), map[string]string{"Host": "rebound.example"}, http.StatusForbidden},
		{"another site's page", g, http.MethodPost, at(addr, id), []byte(`"hi"`), map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"an unknown method", g, http.MethodPut, at(addr, id), []byte(`"hi"`), nil, http.StatusMethodNotAllowed},
		{"a body over 128 KB", g, http.MethodPost, at(addr, id), bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1), nil, http.StatusRequestEntityTooLarge},
		{"headers over 10,240 bytes", g, http.MethodPost, at(addr, id), []byte(`"hi"`), map[string]string{"X-Big": strings.Repeat("b", maxHeaderBytes)}, http.StatusRequestHeaderFieldsTooLarge},
		{"an injected 500", failing500, http.MethodPost, at(addr500, id500), []byte(`"hi"`), nil, http.StatusInternalServerError},
		{"an injected 429", failing429, http.MethodPost, at(addr429, id429), []byte(`"hi"`), nil, http.StatusTooManyRequests},
	}
	seen := map[string]string{}
	for _, c := range cases {
		req, err := http.NewRequestWithContext(ctxT(t), c.method, c.url, bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", signed)
		for k, v := range c.headers {
			switch {
			case k == "Host":
				req.Host = v
			case v == "":
				req.Header.Del(k)
			default:
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: answered %s; want %d", c.name, resp.Status, c.status)
		}
		if got := resp.Header.Get(pubsub.GatewayIDHeader); got != c.gw.ID() {
			t.Errorf("%s: answered %d with %s %q; want %q", c.name, resp.StatusCode, pubsub.GatewayIDHeader, got, c.gw.ID())
		}
		rid := resp.Header.Get("X-Amzn-RequestId")
		if rid == "" {
			t.Errorf("%s: answered %d without X-Amzn-RequestId", c.name, resp.StatusCode)
			continue
		}
		if other, ok := seen[rid]; ok {
			t.Errorf("%s: X-Amzn-RequestId %q, as %s had", c.name, rid, other)
		}
		seen[rid] = c.name
	}
}
