package web

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/socks-dev/socks/internal/loopback"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

//go:embed index.html
var page []byte

// ChatterIDPath is where the live page asks for a short-lived chatter ID.
const ChatterIDPath = "/chatter-id"

// PageChatterTTL is how long a chatter ID issued to the live page is valid.
const PageChatterTTL = 15 * time.Minute

// Issuer issues a chatter ID for geek, valid for ttl.
type Issuer func(ctx context.Context, geek string, ttl time.Duration) (id string, expiresAt time.Time, err error)

// LimitError is an Issuer's refusal because the geek already holds as
// many live chatter IDs as allowed (Err wraps store.ErrLimit), with how
// long until one of them expires and frees a place (RetryAfter; 0 when
// not known). The page is answered 429 Too Many Requests in Err's words,
// with a Retry-After header when RetryAfter is known. An Issuer may also
// return an error wrapping store.ErrLimit alone: 429 without Retry-After.
// An error wrapping store.ErrUnavailable (the store cannot be written
// now) is answered 503, any other 500.
type LimitError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *LimitError) Error() string { return e.Err.Error() }
func (e *LimitError) Unwrap() error { return e.Err }

// SiteOptions configures Site.
type SiteOptions struct {
	// Issue, when set, lets the live page get a short-lived chatter ID at
	// ChatterIDPath. Leave it nil unless the gateway runs on the local
	// backend and listens on loopback only: any page open in the
	// developer's browser can send requests to 127.0.0.1, so the request
	// must also come from the live page's own origin (checked here).
	Issue Issuer
}

// Site returns the handler of what the gateway serves over plain HTTP:
//
//	GET /            the live page (index.html)
//	GET /socks.js    the client, with Access-Control-Allow-Origin: *
//	GET /socks.d.ts  its type declarations, likewise
//	POST /chatter-id a short-lived chatter ID for the live page (see SiteOptions.Issue)
//
// Anything else is 404.
func Site(opts SiteOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		_, _ = w.Write(page)
	})
	for _, name := range ClientFiles {
		ctype := "text/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".d.ts") {
			ctype = "text/plain; charset=utf-8"
		}
		body, _ := ClientFile(name) // embedded: always there
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Content-Type-Options", "nosniff")
			_, _ = w.Write(body)
		})
	}
	mux.HandleFunc(ChatterIDPath, func(w http.ResponseWriter, r *http.Request) {
		serveChatterID(w, r, opts.Issue)
	})
	mux.HandleFunc("/", http.NotFound)
	return mux
}

// serveChatterID issues a short-lived chatter ID to the live page, and only
// to it.
func serveChatterID(w http.ResponseWriter, r *http.Request, issue Issuer) {
	if issue == nil {
		http.Error(w, "this gateway does not issue chatter IDs to pages (only `socks serve` on the local backend, listening on loopback, without --require-signature, does): paste one from `socks chatter issue --geek NAME`", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if err := sameOrigin(r); err != nil {
		http.Error(w, "refused: "+err.Error(), http.StatusForbidden)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(w, "send a JSON body {\"geek\":\"NAME\"} with Content-Type: application/json", http.StatusUnsupportedMediaType)
		return
	}
	var req struct {
		Geek string `json:"geek"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "send a JSON body {\"geek\":\"NAME\"}", http.StatusBadRequest)
		return
	}
	id, expires, err := issue(r.Context(), req.Geek, PageChatterTTL)
	var limited *LimitError
	switch {
	case pubsub.IsInvalid(err):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, store.ErrLimit):
		if errors.As(err, &limited) && limited.RetryAfter > 0 {
			// Whole seconds, rounded up: asked again then, a place is free.
			secs := (limited.RetryAfter + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		}
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	case errors.Is(err, store.ErrUnavailable):
		// The store cannot be written now (a full disk, a lock held): the
		// page may ask again later, as a $connect refused 503 then may.
		http.Error(w, "issuing a chatter ID failed: "+err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, "issuing a chatter ID failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"geek": req.Geek, "chatterId": id, "expiresAt": expires.UTC().Format(time.RFC3339),
	})
}

// sameOrigin checks that r comes from the live page itself: a loopback
// Host (a DNS-rebinding page names its own host), an Origin equal to the
// page's, and, when the browser sends it, Sec-Fetch-Site: same-origin.
func sameOrigin(r *http.Request) error {
	if !loopback.Host(r.Host) {
		return errors.New("the page must be opened at a loopback address")
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return errors.New("no Origin header: only the page served here may ask")
	}
	if origin != "http://"+r.Host {
		return errors.New("another origin (" + origin + ") may not ask for chatter IDs")
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return errors.New("Sec-Fetch-Site is " + s + ", not same-origin")
	}
	return nil
}
