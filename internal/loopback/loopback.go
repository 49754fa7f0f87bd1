// Package loopback tells whether an HTTP request names this machine.
//
// A server on 127.0.0.1 is reached by every web page open in the
// developer's browser, and a page can point its own name at 127.0.0.1
// (DNS rebinding) to read the answers as its own origin. Such a request
// carries the page's name in its Host header; one from this machine's own
// clients names localhost or a loopback address.
package loopback

import (
	"net"
	"net/http"
	"strings"
)

// Host reports whether host, a Host header ("127.0.0.1:8765",
// "localhost", "[::1]:6060"), names the loopback interface: localhost or a
// loopback IP address. Any other name, even one that resolves to
// 127.0.0.1, is some web page's.
func Host(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// Refused is what a loopback-only endpoint answers a request from another
// Host: 403, without echoing it.
const Refused = "refused: this endpoint answers requests to localhost or a loopback address only (a page that points its own name at 127.0.0.1 may not use it)"

// Only wraps h so that a request whose Host is not a loopback one gets
// 403 and never reaches h.
func Only(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Host(r.Host) {
			http.Error(w, Refused, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
