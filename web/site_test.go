package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/web"
)

func get(t *testing.T, h http.Handler, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8765"+path, nil))
	return rec.Result()
}

func TestSiteServesTheClientToAnyOrigin(t *testing.T) {
	h := web.Site(web.SiteOptions{})
	for _, name := range web.ClientFiles {
		t.Run(name+" is served with Access-Control-Allow-Origin: *", func(t *testing.T) {
			resp := get(t, h, "/"+name)
			body, _ := io.ReadAll(resp.Body)
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("status %d, %d bytes; want 200 and the %d bytes of %s", resp.StatusCode, len(body), len(want), name)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q; want *", got)
			}
		})
	}
	t.Run("socks.js is JavaScript, as a module import needs", func(t *testing.T) {
		if ct := get(t, h, "/socks.js").Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("the live page is at /", func(t *testing.T) {
		resp := get(t, h, "/")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`import { connect } from "./socks.js"`)) {
			t.Errorf("status %d body %.200s", resp.StatusCode, body)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Error("the page is served with a CORS header")
		}
	})
	t.Run("other paths are 404", func(t *testing.T) {
		if resp := get(t, h, "/socks.mjs"); resp.StatusCode != 404 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestChatterIDOnlyForThePageItself(t *testing.T) {
	var issued []string
	issue := func(_ context.Context, geek string, ttl time.Duration) (string, time.Time, error) {
		if err := pubsub.ValidateGeek(geek); err != nil {
			return "", time.Time{}, err
		}
		if ttl != web.PageChatterTTL {
			return "", time.Time{}, errors.New("unexpected ttl")
		}
		issued = append(issued, geek)
		return "sc_issued", time.Date(2026, 11, 29, 12, 15, 0, 0, time.UTC), nil
	}
	h := web.Site(web.SiteOptions{Issue: issue})
	page := map[string]string{"Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range page {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name    string
		method  string
		host    string
		headers map[string]string
		body    string
		want    int
	}{
		{"the page's own request gets an ID", "POST", "127.0.0.1:8765", page, `{"geek":"Friendless"}`, 200},
		{"localhost is loopback too", "POST", "localhost:8765", with("Origin", "http://localhost:8765"), `{"geek":"Friendless"}`, 200},
		{"a browser that sends no Sec-Fetch-Site is judged by Origin", "POST", "127.0.0.1:8765", with("Sec-Fetch-Site", ""), `{"geek":"Friendless"}`, 200},
		{"another origin is refused", "POST", "127.0.0.1:8765", with("Origin", "http://127.0.0.1:9999", "Sec-Fetch-Site", "same-site"), `{"geek":"Friendless"}`, 403},
		{"another origin that lies about Sec-Fetch-Site is refused", "POST", "127.0.0.1:8765", with("Origin", "https://evil.example"), `{"geek":"Friendless"}`, 403},
		{"a cross-site fetch is refused", "POST", "127.0.0.1:8765", with("Sec-Fetch-Site", "cross-site"), `{"geek":"Friendless"}`, 403},
		{"no Origin (curl, a form from nowhere) is refused", "POST", "127.0.0.1:8765", with("Origin", ""), `{"geek":"Friendless"}`, 403},
		{"a DNS-rebinding host is refused", "POST", "evil.example:8765", with("Origin", "http://evil.example:8765"), `{"geek":"Friendless"}`, 403},
		{"a form post is refused", "POST", "127.0.0.1:8765", with("Content-Type", "application/x-www-form-urlencoded"), `geek=Friendless`, 415},
		{"GET is refused", "GET", "127.0.0.1:8765", page, ``, 405},
		{"a preflight is refused", "OPTIONS", "127.0.0.1:8765", with("Origin", "http://127.0.0.1:9999", "Access-Control-Request-Method", "POST"), ``, 405},
		{"a bad geek is 400", "POST", "127.0.0.1:8765", page, `{"geek":"a b"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issued = nil
			req := httptest.NewRequest(tt.method, "http://"+tt.host+web.ChatterIDPath, strings.NewReader(tt.body))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d (%s); want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tt.want)
			}
			if rec.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Error("the chatter-id answer carries a CORS header")
			}
			if tt.want != 200 {
				if len(issued) != 0 || strings.Contains(rec.Body.String(), "sc_") {
					t.Errorf("a refused request issued %v: %s", issued, rec.Body.String())
				}
				return
			}
			var got struct{ ChatterID, ExpiresAt string }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ChatterID != "sc_issued" || got.ExpiresAt != "2026-11-29T12:15:00Z" {
				t.Errorf("body %s (%v)", rec.Body.String(), err)
			}
		})
	}
	t.Run("without an issuer the page is told to paste an ID", func(t *testing.T) {
		h := web.Site(web.SiteOptions{})
		req := httptest.NewRequest("POST", "http://127.0.0.1:8765"+web.ChatterIDPath, strings.NewReader(`{"geek":"Friendless"}`))
		for k, v := range page {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), "socks chatter issue") {
			t.Errorf("status %d body %s", rec.Code, rec.Body.String())
		}
	})
}

// TestAPastedChatterIDNeverGoesIntoThePagesURL: the live page's form is
// submitted by its script; but pressed before the module has loaded, or
// with scripts off, the browser submits it itself, as a GET to the page's
// URL with every named field in the query, where the pasted chatter ID
// would stay in the history, the gateway's request line and any Referer.
// The chatter ID's field has no name, so no submission carries it.
func TestAPastedChatterIDNeverGoesIntoThePagesURL(t *testing.T) {
	resp := get(t, web.Site(web.SiteOptions{}), "/")
	body, _ := io.ReadAll(resp.Body)
	form := regexp.MustCompile(`(?s)<form[^>]*>.*?</form>`).Find(body)
	if form == nil {
		t.Fatal("the live page has no form")
	}
	var chatter []byte
	for _, input := range regexp.MustCompile(`<(?:input|textarea|select)\b[^>]*>`).FindAll(form, -1) {
		if regexp.MustCompile(`\bid="chatter"`).Match(input) {
			chatter = input
		}
	}
	if chatter == nil {
		t.Fatalf("no chatter ID field (id=\"chatter\") in the form: %s", form)
	}
	if regexp.MustCompile(`\bname=`).Match(chatter) {
		t.Errorf("the chatter ID field %s has a name: a native submit puts the ID in the page's URL", chatter)
	}
	if regexp.MustCompile(`\bform=`).Match(chatter) {
		t.Errorf("the chatter ID field %s is tied to another form", chatter)
	}
}

// TestAGeekAtItsLiveChatterIDLimitIsTold429: an Issuer refusing because
// the geek holds as many live chatter IDs as allowed is no failure of the
// gateway: the page is answered 429 in the refusal's words, with
// Retry-After when the Issuer knows when a place frees up, not 500.
func TestAGeekAtItsLiveChatterIDLimitIsTold429(t *testing.T) {
	limit := fmt.Errorf("geek Friendless already holds 100 live chatter IDs, the most allowed: revoke some (socks chatter revoke --geek Friendless) or let them expire: %w", store.ErrLimit)
	for _, tt := range []struct {
		name       string
		err        error
		retryAfter string
	}{
		{"with when the oldest expires", &web.LimitError{Err: limit, RetryAfter: 90*time.Second + time.Millisecond}, "91"},
		{"with less than a second to wait", &web.LimitError{Err: limit, RetryAfter: time.Millisecond}, "1"},
		{"without it", limit, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := web.Site(web.SiteOptions{Issue: func(context.Context, string, time.Duration) (string, time.Time, error) {
				return "", time.Time{}, tt.err
			}})
			req := httptest.NewRequest("POST", "http://127.0.0.1:8765"+web.ChatterIDPath, strings.NewReader(`{"geek":"Friendless"}`))
			req.Header.Set("Origin", "http://127.0.0.1:8765")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusTooManyRequests {
				t.Fatalf("status %d (%s); want 429", rec.Code, rec.Body.String())
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q; want %q", got, tt.retryAfter)
			}
			if body := rec.Body.String(); !strings.Contains(body, "already holds 100 live chatter IDs") || !strings.Contains(body, "socks chatter revoke") {
				t.Errorf("body %q; want the refusal in words", body)
			}
		})
	}
}

// TestAStoreThatCannotBeWrittenNowIsTold503: an Issuer failing because
// the store cannot be written now (store.ErrUnavailable: the state file's
// disk is full, or another process holds its lock) is answered 503 in
// the error's words, as a $connect that cannot be recorded then is, not
// 500: the page may ask again later, and nothing is wrong with it or
// with the gateway.
func TestAStoreThatCannotBeWrittenNowIsTold503(t *testing.T) {
	full := fmt.Errorf("cannot write the state file /s/socks.db: the disk is full; free some space and try again: %w", store.ErrUnavailable)
	h := web.Site(web.SiteOptions{Issue: func(context.Context, string, time.Duration) (string, time.Time, error) {
		return "", time.Time{}, full
	}})
	req := httptest.NewRequest("POST", "http://127.0.0.1:8765"+web.ChatterIDPath, strings.NewReader(`{"geek":"Friendless"}`))
	req.Header.Set("Origin", "http://127.0.0.1:8765")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%s); want 503", rec.Code, rec.Body.String())
	}
	if body := rec.Body.String(); !strings.Contains(body, "the disk is full; free some space and try again") {
		t.Errorf("body %q; want the error in words", body)
	}
}
