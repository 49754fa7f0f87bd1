// Package loopback tells whether an HTTP request names this machine.
//
// A server on 127.0.0.1 is reached by every web page open in the
// developer's browser, and a page can point its own name at 127.0.0.1
// (DNS rebinding) to read the answers as its own origin. Such a request
// carries the page's name in its Host header; one from this machine's own
// clients names localhost or a loopback address.
package loopback

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Host reports whether host, a Host header ("127.0.0.1:8765",
// "localhost", "[::1]:6060"), names the loopback interface (Name). Any
// other name, even one that resolves to 127.0.0.1, is some web page's.
func Host(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	return Name(h)
}

// Name reports whether name, a host without its port ("localhost",
// "127.0.0.1", "::1" or "[::1]"), names the loopback interface: localhost
// in any case, also written as the fully qualified "localhost." (names
// are matched case-blind, and a trailing dot only says the name is
// absolute), or a loopback IP address. Every check of "is this host this
// machine" goes through it (a Host header, --pprof's address, an
// endpoint URL), so that they all agree.
func Name(name string) bool {
	if strings.EqualFold(strings.TrimSuffix(name, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// Resolvable returns host as Go's resolver finds it: "localhost" for
// the fully qualified "localhost." (in any case), which Name takes as
// localhost but Go looks up in DNS, not in the hosts file, and so does
// not find; any other host as it is. Whatever listens on or dials a host
// Name judged goes through it (Addr, Dial), so that a name taken as this
// machine is also reached there.
func Resolvable(host string) string {
	if strings.EqualFold(host, "localhost.") {
		return "localhost"
	}
	return host
}

// Addr is addr, a host:port or a host alone, with its host as Resolvable
// gives it: what to listen on or dial for it.
func Addr(addr string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Resolvable(addr)
	}
	if r := Resolvable(h); r != h {
		return net.JoinHostPort(r, port)
	}
	return addr
}

// Dial wraps dial (a net.Dialer's or an http.Transport's DialContext) to
// dial Addr(addr): an endpoint URL on "localhost." reaches localhost.
func Dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dial(ctx, network, Addr(addr))
	}
}

// Proxy wraps proxy (an http.Transport's or a dialer's Proxy, such as
// http.ProxyFromEnvironment; nil is none) so that a request to a host
// Name takes as this machine goes to it directly, as Dial reaches it, and
// never through a proxy, which would take "localhost." for its own
// machine: Go's own rule spares "localhost" and loopback addresses, not
// "localhost." or "LOCALHOST".
func Proxy(proxy func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	if proxy == nil {
		return nil
	}
	return func(r *http.Request) (*url.URL, error) {
		if r.URL != nil && Name(r.URL.Hostname()) {
			return nil, nil
		}
		return proxy(r)
	}
}

// Refused is what a loopback-only endpoint answers a request from another
// Host: 403, without echoing it.
const Refused = "refused: this endpoint answers requests to localhost or a loopback address only (a page that points its own name at 127.0.0.1 may not use it)"

// FromOtherSite reports whether a browser says r was sent by a page of
// another site (Sec-Fetch-Site cross-site or same-site): any page may send
// requests to 127.0.0.1, unread (an <img> or a form), to start what they
// ask for. Requests the user typed ("none"), of the same origin, and from
// programs (no header) are not.
func FromOtherSite(r *http.Request) bool {
	s := r.Header.Get("Sec-Fetch-Site")
	return s == "cross-site" || s == "same-site"
}

// RefusedSite is what a loopback-only endpoint answers a request another
// site's page sent.
const RefusedSite = "refused: another site's page may not use this endpoint; open it yourself"

// Only wraps h for an endpoint of this machine's own: a request whose
// Host is not a loopback one, or that another site's page sent, gets 403
// and never reaches h.
func Only(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !Host(r.Host):
			http.Error(w, Refused, http.StatusForbidden)
		case FromOtherSite(r):
			http.Error(w, RefusedSite, http.StatusForbidden)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// Transport makes t dial an address on "localhost." on localhost (Dial),
// which Go's resolver would look up in DNS and not find, and never
// through a proxy (Proxy), which would take it for its own machine.
func Transport(t *http.Transport) {
	t.DialContext = Dial(t.DialContext)
	t.Proxy = Proxy(t.Proxy)
}
