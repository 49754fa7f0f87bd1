package loopback

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8765": true, "127.0.0.1": true, "127.1.2.3:80": true, "[::1]:6060": true, "::1": true, "[::1]": true,
		"localhost": true, "localhost:8765": true,
		// The fully qualified name, and any case: the same host.
		"localhost.": true, "localhost.:8765": true, "LocalHost:8765": true, "LOCALHOST.": true,
		"localhost..": false, ".localhost": false, "localhost.:": true,
		// Forms a browser never sends (it writes 127.0.0.1 for them, and
		// takes no zone in a URL): refused, as any other name is.
		"localhost..:80": false, "LOCALHOST.:80": true, "[::1%25lo]:80": false, "[::1%lo]:80": false,
		"0x7f.1:80": false, "127.1:80": false, "2130706433:80": false, "foo.localhost:80": false,
		"rebind.attacker.example:8765": false, "rebind.attacker.example": false,
		"127.0.0.1.attacker.example:8765": false, "localhost.attacker.example": false,
		"10.0.0.1:8765": false, "[::ffff:10.0.0.1]:1": false, "": false, "0.0.0.0:8765": false,
	} {
		if got := Host(host); got != want {
			t.Errorf("Host(%q) = %v, want %v", host, got, want)
		}
	}
}

// Name judges a host without its port, as --pprof's address and an
// endpoint URL's host give it.
func TestName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"localhost", true},
		{"localhost.", true},
		{"LOCALHOST", true},
		{"Localhost.", true},
		{"127.0.0.1", true},
		{"127.9.9.9", true},
		{"::1", true},
		{"[::1]", true},
		{"localhost..", false},
		{"localhost.example", false},
		{"notlocalhost", false},
		{"127.0.0.1.", false}, // not an address, and a name no resolver maps
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"", false},
		{".", false},
	} {
		if got := Name(tc.name); got != tc.want {
			t.Errorf("Name(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOnly(t *testing.T) {
	h := Only(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "served") }))
	for _, tc := range []struct {
		host, site string
		want       int
	}{
		{"127.0.0.1:6060", "", http.StatusOK},
		{"127.0.0.1:6060", "none", http.StatusOK},
		{"localhost:6060", "same-origin", http.StatusOK},
		{"127.0.0.1:6060", "cross-site", http.StatusForbidden},
		{"127.0.0.1:6060", "same-site", http.StatusForbidden},
		{"rebind.attacker.example:6060", "same-origin", http.StatusForbidden},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:6060/debug/pprof/", nil)
		req.Host = tc.host
		if tc.site != "" {
			req.Header.Set("Sec-Fetch-Site", tc.site)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || (tc.want != http.StatusOK) == strings.Contains(rec.Body.String(), "served") {
			t.Errorf("Host %s, Sec-Fetch-Site %q: %d %q; want %d", tc.host, tc.site, rec.Code, rec.Body, tc.want)
		}
	}
}

// TestEveryNameOfLocalhostIsListenedOnAndDialled: each name Name takes as
// localhost is one Go can listen on and dial, through Addr and Dial.
// Before, "localhost." was judged loopback but Go sent it to DNS, which
// has no such name: `socks serve --addr localhost.:8765` failed, and an
// endpoint URL on it was taken as an emulator and then not reached.
func TestEveryNameOfLocalhostIsListenedOnAndDialled(t *testing.T) {
	for addr, want := range map[string]string{
		"localhost.:80": "localhost:80", "LOCALHOST.:80": "localhost:80", "localhost.": "localhost",
		"localhost:80": "localhost:80", "127.0.0.1:80": "127.0.0.1:80", "[::1]:80": "[::1]:80",
		"example.com.:80": "example.com.:80", "localhost..:80": "localhost..:80", "": "",
	} {
		if got := Addr(addr); got != want {
			t.Errorf("Addr(%q) = %q, want %q", addr, got, want)
		}
	}
	for _, name := range []string{"localhost", "localhost.", "LocalHost."} {
		ln, err := net.Listen("tcp", Addr(name+":0"))
		if err != nil {
			t.Errorf("listening on %s:0: %v", name, err)
			continue
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		accepted := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			accepted <- err
		}()
		c, err := Dial(nil)(t.Context(), "tcp", net.JoinHostPort(name, port))
		if err != nil {
			t.Errorf("dialling %s:%s: %v", name, port, err)
			ln.Close()
			<-accepted
			continue
		}
		c.Close()
		if err := <-accepted; err != nil {
			t.Errorf("accepting on %s: %v", name, err)
		}
		ln.Close()
	}
}

// TestThisMachineIsNotReachedThroughAProxy: with a proxy set (as
// HTTPS_PROXY sets one), a request to this machine by any of its names
// goes to it, not to the proxy, which would take "localhost." for its own
// machine; Go's own rule (http.ProxyFromEnvironment) spares "localhost"
// and loopback addresses but sends "localhost." and "LOCALHOST" to the
// proxy. Any other host still goes through it.
func TestThisMachineIsNotReachedThroughAProxy(t *testing.T) {
	via, _ := url.Parse("http://proxy.example:3128")
	proxy := Proxy(http.ProxyURL(via))
	for raw, want := range map[string]*url.URL{
		"http://localhost.:4566/": nil, "https://LOCALHOST:8765/": nil, "ws://Localhost.:8765/connect": nil,
		"http://127.0.0.1:8000/": nil, "http://[::1]:8000/": nil,
		"https://sqs.eu-west-1.amazonaws.com/": via, "http://localhost.example:80/": via,
	} {
		req, err := http.NewRequest(http.MethodGet, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := proxy(req); err != nil || got != want {
			t.Errorf("the proxy of %s = %v, %v; want %v", raw, got, err, want)
		}
	}
	if Proxy(nil) != nil {
		t.Error("Proxy(nil) is not nil: no proxy stays none")
	}
}
