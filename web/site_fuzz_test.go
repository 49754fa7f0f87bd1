package web_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/web"
)

// FuzzChatterIDIsIssuedOnlyToTheLivePage sends POST /chatter-id any Host,
// Origin, Sec-Fetch-Site, Content-Type and body: a chatter ID is issued
// only for a request a page could send from the live page itself (a
// loopback Host, the same origin, same-origin or no Sec-Fetch-Site, JSON)
// and only for a valid geek; every other request is refused with a 4xx
// and issues nothing.
func FuzzChatterIDIsIssuedOnlyToTheLivePage(f *testing.F) {
	f.Add("POST", "127.0.0.1:4510", "http://127.0.0.1:4510", "", "application/json", `{"geek":"Friendless"}`)
	f.Add("POST", "localhost", "http://localhost", "same-origin", "application/json; charset=utf-8", `{"geek":"a"}`)
	f.Add("POST", "evil.example", "http://evil.example", "", "application/json", `{"geek":"a"}`)
	f.Add("POST", "127.0.0.1:4510", "http://evil.example", "cross-site", "application/json", `{"geek":"a"}`)
	f.Add("POST", "127.0.0.1:4510", "", "", "application/json", `{"geek":"a"}`)
	f.Add("POST", "[::1]:80", "http://[::1]:80", "", "text/plain", `{"geek":"a"}`)
	f.Add("POST", "127.0.0.1", "http://127.0.0.1", "none", "application/json", `{"geek":"a b"}`)
	f.Add("GET", "127.0.0.1", "http://127.0.0.1", "", "application/json", `{"geek":"a"}`)
	f.Add("POST", "127.0.0.1", "http://127.0.0.1", "", "application/json", `{"geek":"a"} {"geek":"b"}`)
	f.Fuzz(func(t *testing.T, method, host, origin, fetchSite, ctype, body string) {
		var raw bytes.Buffer
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, web.ChatterIDPath, host)
		for name, v := range map[string]string{"Origin": origin, "Sec-Fetch-Site": fetchSite, "Content-Type": ctype} {
			if v != "" {
				fmt.Fprintf(&raw, "%s: %s\r\n", name, v)
			}
		}
		fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n%s", len(body), body)
		r, err := http.ReadRequest(bufio.NewReader(&raw))
		if err != nil {
			return // net/http answers 400 itself
		}
		var issued []string
		site := web.Site(web.SiteOptions{Issue: func(_ context.Context, geek string, _ time.Duration) (string, time.Time, error) {
			if err := pubsub.ValidateGeek(geek); err != nil {
				return "", time.Time{}, err
			}
			issued = append(issued, geek)
			return "sc_issued", time.Now(), nil
		}})
		w := httptest.NewRecorder()
		site.ServeHTTP(w, r)
		if len(issued) == 0 {
			if w.Code < 400 || w.Code > 499 {
				t.Fatalf("%s Host %q Origin %q: %d without an ID", method, r.Host, r.Header.Get("Origin"), w.Code)
			}
			if strings.Contains(w.Body.String(), "sc_issued") {
				t.Fatal("refused, but the answer holds an ID")
			}
			return
		}
		h := r.Host
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		ip := net.ParseIP(strings.Trim(h, "[]"))
		loop := strings.EqualFold(h, "localhost") || strings.EqualFold(h, "localhost.") || (ip != nil && ip.IsLoopback())
		site2 := r.Header.Get("Sec-Fetch-Site")
		if r.Method != http.MethodPost || !loop || r.Header.Get("Origin") != "http://"+r.Host || (site2 != "" && site2 != "same-origin") ||
			!strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type"))), "application/json") {
			t.Fatalf("issued a chatter ID to %s Host %q Origin %q Sec-Fetch-Site %q Content-Type %q", r.Method, r.Host, r.Header.Get("Origin"), site2, r.Header.Get("Content-Type"))
		}
		if w.Code != http.StatusOK || len(issued) != 1 {
			t.Fatalf("issued %q, answered %d", issued, w.Code)
		}
	})
}
