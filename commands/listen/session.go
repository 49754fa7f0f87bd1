package listen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/ui"
	"github.com/socks-dev/socks/wsclient"
)

const (
	// stableAfter: a connection that lasted this long resets the backoff.
	stableAfter = 10 * time.Second
	// renewRetry is the wait before another try at renewing a connection
	// that is still open.
	renewRetry = 5 * time.Second
	// overlapGrace is how long after a renewal the new connection's
	// messages are matched against those the old one delivered after the
	// new one opened; overlapMemory bounds how many bodies are kept.
	overlapGrace  = 5 * time.Second
	overlapMemory = 1000
	// maxRetryAfter caps the wait a gateway's Retry-After asks for.
	maxRetryAfter = 60 * time.Second
)

// action is a frame sent to the gateway and not yet answered.
type action struct {
	name  string   // subscribe, unsubscribe, ping
	asked []string // the topics sent
	// topics are those whose following the action still decides: those
	// asked, less those a later action, answered first, decided since
	// (see settle).
	topics []string
	sent   time.Time
}

// session is one `socks listen`: the connection of the moment, the topics
// it must follow, and what it has shown. Only run's goroutine touches it.
type session struct {
	o      *Options
	ep     *endpoint
	dial   DialFunc
	wsOpts wsclient.Options
	p      *printer

	// topics are what was asked for, by the flags and the typed commands
	// the gateway answered, never a reply's list; with pending applied,
	// what the next connection follows (wanted).
	topics  []string
	pending []action // sent on the current connection, unanswered, in the order typed
	capped  bool     // a command was not sent for maxPending, and said so
	conn    Conn
	base    string    // the URL conn was opened on
	since   time.Time // when conn opened
	step    int       // backoff step
	fails   int       // failed reconnects in a row
	// retried: conn came from a reconnect, so that its ending within
	// stableAfter makes that reconnect a failed one.
	retried bool
	got     int // messages shown
	timeout *time.Timer
	// A renewal's overlap: the bodies the old connection delivered after
	// the new one opened (recording, from recordFrom on), then, until
	// dupsUntil, those the new one has not matched yet (dups, a body's
	// hash -> count). See renew.
	recording  map[string]int
	recordFrom time.Time
	dups       map[string]int
	dupsUntil  time.Time
	// lostRecord: the gateway answered an action of conn with
	// routes.NotRegistered, so conn is to be replaced (see unregistered).
	lostRecord bool
}

func newSession(o *Options) *session {
	dial := o.Dial
	if dial == nil {
		dial = dialWS
	}
	return &session{
		o: o,
		ep: &endpoint{
			url: o.URL, id: o.ID, geek: o.Geek,
			backend: o.Backend, now: o.now, stopping: o.Stopping, warn: o.IO.ErrOut,
		},
		dial:   dial,
		wsOpts: o.wsOptions(),
		p:      newPrinter(o),
		topics: slices.Clone(o.Topics),
	}
}

// printer sends each line where it belongs.
type printer struct {
	out, errOut io.Writer
	term        bool // terminal layout on stdout
	json        bool // --json: every line as JSON on stdout
	tr          *renderer
	pr          *renderer // plain, for standard error
}

func newPrinter(o *Options) *printer {
	term := o.IO.IsStdoutTTY() && !o.JSON
	return &printer{
		out: o.IO.Out, errOut: o.IO.ErrOut,
		term: term, json: o.JSON,
		tr: newRenderer(ui.New(o.IO), true, o.loc),
		pr: newRenderer(cmdutil.ErrUI(o.IO, o.JSON), o.IO.IsStderrTTY(), o.loc),
	}
}

func (p *printer) emit(l Line) error {
	var err error
	switch {
	case p.term:
		_, err = io.WriteString(p.out, p.tr.render(l))
	case p.json && l.Kind != kindNotice, l.Kind == KindMessage, l.Kind == KindReply:
		err = writeJSON(p.out, l)
	default:
		_, err = io.WriteString(p.errOut, p.pr.render(l))
	}
	return err
}

func (s *session) notice(format string, args ...any) error {
	return s.p.emit(Line{Time: s.o.now(), Kind: kindNotice, Error: fmt.Sprintf(format, args...)})
}

func (s *session) typing() bool { return !s.o.NoInput && s.o.IO.In != nil }

// run connects and shows what arrives until an exit condition.
func (s *session) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.p.term {
		if _, err := io.WriteString(s.p.out, s.p.tr.header(s.displayURL(ctx), s.o.Geek, s.topics, s.typing())); err != nil {
			return err
		}
	}
	var timeout <-chan time.Time
	if s.o.Timeout > 0 {
		s.timeout = time.NewTimer(s.o.Timeout)
		defer s.timeout.Stop()
		timeout = s.timeout.C
	}

	// The first connection is not retried: a wrong URL or a stopped
	// gateway is reported at once.
	conn, err := s.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if fatal := s.fatal(err); fatal != nil {
			return fatal
		}
		var he *wsclient.HandshakeError
		if errors.As(err, &he) {
			// A gateway answered (a 5xx): it runs.
			return errors.New(s.refused(err, he))
		}
		var ce *connectError
		if errors.As(err, &ce) && ce.base != "" {
			if hte, ok := errors.AsType[*wsclient.HandshakeTimeoutError](err); ok && hte.Connected {
				// It took the TCP connection: it runs, but is stuck.
				return fmt.Errorf("cannot connect to %v (the gateway took the connection but could not finish it: its store may be stuck, such as a state file or a DynamoDB that does not answer, or the process paused; see the output of socks serve)", err)
			}
			return fmt.Errorf("cannot connect to %v (%s)", err, unreachedHint(err, s.ep.from))
		}
		return err
	}
	if err := s.attach(conn); err != nil {
		discard(conn)
		return err
	}
	why := "interrupted"
	// errorSays: the error run returns says why, as Main shows it (exit
	// 4 "socks: no message within 2s"), so the closed line a person
	// reads does not say it again.
	errorSays := false
	defer func() { s.close(why, errorSays) }()

	input := s.input(ctx)
	// `| head -1`: once the reader has gone, stop at once (the chatter ID
	// revoked, the connection closed) rather than at the next message,
	// which may never come.
	outClosed := s.o.IO.OutClosed()
	var retry, renew <-chan time.Time
	renew = s.renewTimer()
	for {
		var frames <-chan wsclient.Frame
		var pongs <-chan time.Duration
		if s.conn != nil {
			frames, pongs = s.conn.Frames(), s.conn.Pongs()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-outClosed:
			why = "standard output was closed"
			return &iostreams.ClosedPipeError{Stream: "standard output", Err: syscall.EPIPE}
		case <-timeout:
			err := fmt.Errorf("no message within %s", s.o.Timeout)
			why, errorSays = err.Error(), true
			return cmdutil.Exit(cmdutil.ExitTimeout, err)
		case f, ok := <-frames:
			if !ok {
				renew = nil
				if retry, err = s.dropped(); err != nil {
					return err
				}
				continue
			}
			stop, reason, err := s.frame(f)
			if err != nil || stop {
				why = reason
				return err
			}
			if s.lostRecord {
				renew = nil
				if retry, err = s.unregistered(); err != nil {
					return err
				}
			}
		case d := <-pongs:
			if s.o.ShowPing {
				if err := s.p.emit(Line{Time: s.o.now(), Kind: KindPing, RTTMS: ms(d)}); err != nil {
					return err
				}
			}
		case line, ok := <-input:
			if !ok {
				input = nil // standard input ended: keep listening
				if s.o.IO.IsStdinTTY() {
					// Ctrl-D: whatever is typed next is not read.
					if err := s.notice("standard input ended (Ctrl-D), so no more commands are read; Ctrl-C stops listen"); err != nil {
						return err
					}
				}
				continue
			}
			if line.tooLong {
				if err := s.notice("a typed line over %d KB was ignored", maxTypedLine/1024); err != nil {
					return err
				}
				continue
			}
			quit, err := s.command(line.text)
			if err != nil {
				return err
			}
			if quit {
				why = "quit"
				return nil
			}
		case <-retry:
			retry = nil
			conn, err := s.connect(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if fatal := s.fatal(err); fatal != nil {
					return fatal
				}
				s.fails++
				if s.o.MaxRetries > 0 && s.fails >= s.o.MaxRetries {
					return fmt.Errorf("gave up after %d failed reconnects in a row: %w", s.fails, err)
				}
				if retry, err = s.scheduleRetry(err.Error(), retryAfter(err)); err != nil {
					return err
				}
				continue
			}
			if err := s.attach(conn); err != nil {
				return err
			}
			s.retried = true
			renew = s.renewTimer()
		case <-renew:
			var stop bool
			var reason string
			renew, stop, reason, err = s.renew(ctx)
			if err != nil || stop {
				why = reason
				return err
			}
		}
	}
}

// maxTypedLine bounds a typed line: a longer one (a blob pasted at the
// prompt) is skipped with a note, and typing goes on.
const maxTypedLine = 64 * 1024

// typedLine is one line typed on standard input, or a note that one over
// maxTypedLine was skipped.
type typedLine struct {
	text    string
	tooLong bool
}

// input delivers the lines typed on standard input, until it ends.
func (s *session) input(ctx context.Context) <-chan typedLine {
	if !s.typing() {
		return nil
	}
	ch := make(chan typedLine, 16)
	go func() {
		defer close(ch)
		r := bufio.NewReaderSize(s.o.IO.In, maxTypedLine)
		for {
			b, err := r.ReadSlice('\n')
			line := typedLine{text: strings.TrimRight(string(b), "\r\n")}
			for errors.Is(err, bufio.ErrBufferFull) {
				line = typedLine{tooLong: true}
				_, err = r.ReadSlice('\n')
			}
			if len(b) > 0 || line.tooLong {
				select {
				case ch <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// displayURL is the URL to show before connecting (never with the
// chatter ID).
func (s *session) displayURL(ctx context.Context) string {
	if s.o.URL != "" {
		return s.o.URL
	}
	if s.o.Backend != nil {
		if b, err := s.o.Backend(ctx); err == nil {
			if u, err := b.WebSocketURL(ctx); err == nil {
				return u
			}
		}
	}
	return "(the backend's gateway)"
}

// connectError is a failed connection attempt to base.
type connectError struct {
	base string
	err  error
}

func (e *connectError) Error() string {
	if e.base == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("%s: %v", Sanitize(e.base, false), e.err)
}
func (e *connectError) Unwrap() error { return e.err }

// connect opens a connection that follows the wanted topics.
func (s *session) connect(ctx context.Context) (Conn, error) {
	base, err := s.ep.base(ctx)
	if err != nil {
		return nil, &connectError{err: err}
	}
	secret, err := s.ep.chatterID(ctx)
	if err != nil {
		// Not the gateway's doing: no URL, so no "is it running?" hint.
		return nil, &connectError{err: err}
	}
	opts, inURL := s.wsOpts, secret
	if s.o.IDIn != IDInQuery && secret != "" {
		// Offered next to "socks", first after it: the gateway takes the
		// first other protocol for the ID, and answers "socks" alone.
		opts.Subprotocols = append([]string{routes.Subprotocol, secret}, s.wsOpts.Subprotocols...)
		inURL = ""
	}
	u, err := wsclient.ConnectURL(base, s.o.Geek, inURL, s.wanted())
	if err != nil {
		return nil, &connectError{base: base, err: err}
	}
	conn, err := s.dial(ctx, u, opts)
	if he, ok := errors.AsType[*wsclient.HandshakeError](err); ok && expiredRefusal(he) && s.ep.issuedHere() && !s.ep.fresh {
		// Valid by this machine's clock, expired by the gateway's, which
		// is ahead: replaced once (a fresh one refused too ends listen,
		// see hint), where listen stopped blaming another store.
		s.ep.expire()
		return s.connect(ctx)
	}
	if err != nil {
		return nil, &connectError{base: base, err: wsclient.InUsersWords(err, "during the handshake")}
	}
	s.base = base
	return conn, nil
}

// unreachedHint is the hint for a first connection that reached no
// gateway: the URL's host or scheme, or the gateway not running. from
// names where the URL came from ("--url", or the AWS backend's setting).
func unreachedHint(err error, from string) string {
	var dns *net.DNSError
	var record tls.RecordHeaderError
	var cert *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "check the host in " + from
	case errors.As(err, &record):
		return "use ws:// for a gateway without TLS, such as socks serve's"
	case errors.As(err, &cert):
		return "--insecure skips the check, for a test endpoint only"
	}
	return "is the gateway running? check " + from
}

// fatal turns an error that must not be retried into the command's error:
// a refused upgrade (exit 5), or, for the first connection, another
// client error from the gateway. Once a connection was open (a reconnect,
// a renewal) the URL is known good, so any refusal but 401/403 (a captive
// portal's 200, a 404 while the API is redeployed) is retried, bounded by
// --max-retries.
func (s *session) fatal(err error) error {
	var he *wsclient.HandshakeError
	if !errors.As(err, &he) {
		var fe *cmdutil.FlagError
		if errors.As(err, &fe) {
			return err
		}
		return nil
	}
	msg := s.refused(err, he)
	switch {
	case he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden:
		return cmdutil.Exit(cmdutil.ExitRefused, errors.New(msg))
	case he.Status == http.StatusRequestTimeout || he.Status == http.StatusTooManyRequests || he.Status >= 500:
		return nil
	case s.base != "":
		// s.base: a connection was open before, on this URL.
		return nil
	}
	return errors.New(msg)
}

// refused describes err, a handshake the gateway refused with he, with
// the hint of its status.
func (s *session) refused(err error, he *wsclient.HandshakeError) string {
	base := "the gateway"
	var ce *connectError
	if errors.As(err, &ce) && ce.base != "" {
		base = Sanitize(ce.base, false)
	}
	if he.ToHTTPS && strings.HasPrefix(base, "ws://") {
		// An HTTP port in front of a TLS one: the gateway may well be
		// there, over wss://.
		return fmt.Sprintf("%s answered HTTP %d %s, a redirect to https:// (the server speaks TLS: use wss://)", base, he.Status, http.StatusText(he.Status))
	}
	if he.Status < 400 {
		// A web server or a redirect, not a WebSocket endpoint: its page
		// says nothing to the point.
		return fmt.Sprintf("%s answered HTTP %d %s instead of switching to WebSocket: it is not a WebSocket endpoint (check %s)", base, he.Status, http.StatusText(he.Status), s.ep.from)
	}
	msg := fmt.Sprintf("%s refused the connection: HTTP %d %s", base, he.Status, http.StatusText(he.Status))
	if he.Reason != "" {
		msg += ": " + Sanitize(clip(he.Reason, maxReason), false)
	}
	return msg + " (" + s.hint(he) + ")"
}

// expiredRefusal reports whether he is the gateway's refusal of a chatter
// ID past its expiry by the gateway's clock.
func expiredRefusal(he *wsclient.HandshakeError) bool {
	return he.Status == http.StatusForbidden && strings.HasPrefix(he.Reason, pubsub.ChatterIDExpired)
}

// maxReason bounds what refused shows of the body of a refusal.
const maxReason = 300

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (s *session) hint(he *wsclient.HandshakeError) string {
	status := he.Status
	switch status {
	case http.StatusUnauthorized:
		if s.o.IDIn != IDInQuery && strings.Contains(strings.ToLower(he.Reason), "chatter id") {
			// The ID went in Sec-WebSocket-Protocol: something on the
			// way (a proxy, an old gateway) dropped or ignored it.
			return "listen sent the chatter ID in Sec-WebSocket-Protocol, and the gateway saw none: something on the way dropped that header, or the gateway is an older socks; try --id-in query"
		}
		return "the gateway wants a geek and a chatter ID: pass --id, or leave it out and listen issues one"
	case http.StatusForbidden:
		switch {
		case s.ep.issuedHere() && s.ep.fresh && expiredRefusal(he):
			return fmt.Sprintf("listen issued this chatter ID just now, valid for %s, and the gateway takes it for expired: the gateway's clock is ahead of the one listen issued it by (the store's, or this machine's when the store has none) by more than that; set the clocks right (NTP) and run listen again", chatterTTL)
		case s.ep.issuedHere() && s.base != "":
			// s.base: a connection was open before, on an ID from this store.
			return "listen issued this chatter ID itself and the gateway took them before: it was revoked (socks chatter revoke), or the gateway now checks another store"
		case s.ep.issuedHere():
			return "listen issued this chatter ID itself, so the gateway checks another store: make --url and --state-dir (or --backend) name the same installation"
		}
		from := s.o.idFrom
		if from == "" {
			from = "--id"
		}
		return fmt.Sprintf("issue a chatter ID with `socks chatter issue --geek %s`, or give none (leave out %s) and listen issues one", s.o.Geek, from)
	case http.StatusBadRequest:
		if r := strings.ToLower(he.Reason); strings.Contains(r, "http request") && strings.Contains(r, "https") {
			// Go's "Client sent an HTTP request to an HTTPS server.",
			// nginx's "The plain HTTP request was sent to HTTPS port".
			return "the server speaks TLS: use wss://"
		}
		return "the gateway refused the geek or topic names"
	case http.StatusTooManyRequests:
		return "close one or try again later"
	case http.StatusNotFound:
		return "no WebSocket API at this URL: check the host and the stage path"
	}
	if status >= 500 {
		return "the gateway runs but could not take the connection: its log (or serve's output) says why; try again later"
	}
	return "check " + s.ep.from
}

// attach makes conn the current connection. It does not end a run of
// failed reconnects: a gateway that accepts and drops at once would never
// use up --max-retries (dropped decides).
func (s *session) attach(conn Conn) error {
	s.conn, s.since, s.retried = conn, time.Now(), false
	s.topics, s.pending = s.wanted(), nil
	return s.p.emit(Line{Time: s.o.now(), Kind: KindState, State: StateConnected,
		URL: s.base, Geek: s.o.Geek, Topics: slices.Clone(s.topics)})
}

// dropped handles the end of the current connection and schedules the
// first reconnect.
func (s *session) dropped() (<-chan time.Time, error) {
	l := Line{Time: s.o.now(), Kind: KindState, State: StateDisconnected}
	err := s.conn.Err()
	if code, reason, ok := wsclient.CloseStatus(err); ok {
		l.Code, l.Reason = code, reason
	} else if err != nil {
		l.Error = err.Error()
	} else {
		l.Error = "the connection ended"
	}
	return s.ended(l, "")
}

// notRegisteredCode and notRegisteredReason close a connection whose
// record the gateway lost, as socks.js closes it.
const (
	notRegisteredCode   = wsclient.CloseNormalClosure
	notRegisteredReason = "not registered"
)

// unregistered closes the current connection, whose record the gateway
// lost (it answered an action with routes.NotRegistered: nothing
// published reaches it), and schedules a fresh one, as after a drop: the
// same backoff, and the topics followed.
func (s *session) unregistered() (<-chan time.Time, error) {
	s.lostRecord = false
	go discard(s.conn) // Close waits for the gateway's answer
	return s.ended(Line{Time: s.o.now(), Kind: KindState, State: StateDisconnected, Code: notRegisteredCode, Reason: notRegisteredReason},
		"the gateway has no record of this connection (pruned, expired, or its store wiped), so nothing published reached it: a fresh one follows every topic")
}

// ended handles the end of the current connection, said by l, and
// schedules the first reconnect, saying why when why is not "".
func (s *session) ended(l Line, why string) (<-chan time.Time, error) {
	s.topics, s.pending = s.wanted(), nil
	switch {
	case time.Since(s.since) >= stableAfter:
		s.step, s.fails = 0, 0
	case s.retried:
		// A reconnect whose connection ended at once failed too.
		s.fails++
	}
	s.conn, s.dups = nil, nil
	if err := s.p.emit(l); err != nil {
		return nil, err
	}
	if s.o.MaxRetries > 0 && s.fails >= s.o.MaxRetries {
		return nil, fmt.Errorf("gave up after %d failed reconnects in a row: the gateway accepted and ended each connection within %s (last: %s)", s.fails, stableAfter, closeText(l))
	}
	return s.scheduleRetry(why, 0)
}

// scheduleRetry waits the backoff's next delay, or at least floor (what a
// gateway's Retry-After asked for) when that is longer.
func (s *session) scheduleRetry(why string, floor time.Duration) (<-chan time.Time, error) {
	d := max(s.o.Backoff.Delay(s.step), floor)
	s.step++
	err := s.p.emit(Line{Time: s.o.now(), Kind: KindState, State: StateReconnecting,
		RetryInMS: max(d.Milliseconds(), 1), Attempt: s.fails + 1, MaxAttempts: s.o.MaxRetries, Error: why})
	return s.o.wait(d), err
}

// retryAfter is the wait the gateway's Retry-After asked for when it
// refused err's upgrade (a 503 while it shuts down, a 429 at its
// connection cap), at most maxRetryAfter; 0 without one.
func retryAfter(err error) time.Duration {
	var he *wsclient.HandshakeError
	if !errors.As(err, &he) {
		return 0
	}
	return min(he.RetryAfter, maxRetryAfter)
}

// renewTimer fires when the current connection is to be renewed:
// --max-connection after it opened (never when that is 0).
func (s *session) renewTimer() <-chan time.Time {
	if s.o.MaxConnection <= 0 {
		return nil
	}
	return s.o.renewWait(s.o.MaxConnection)
}

// renew replaces the current connection with a fresh one before the
// gateway's cap ends it: the new one opens first, following the same
// topics, then the old one is closed and what it still held is shown.
func (s *session) renew(ctx context.Context) (next <-chan time.Time, stop bool, why string, err error) {
	if err := s.p.emit(Line{Time: s.o.now(), Kind: KindState, State: StateRenewing}); err != nil {
		return nil, true, "", err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, true, "interrupted", nil
		}
		if fatal := s.fatal(err); fatal != nil {
			return nil, true, "refused", fatal
		}
		d := max(renewRetry, retryAfter(err))
		err = s.p.emit(Line{Time: s.o.now(), Kind: KindState, State: StateRenewing,
			Error: fmt.Sprintf("failed, trying again in %s: %v", d, err)})
		return s.o.renewWait(d), false, "", err
	}
	// Close the old connection while showing what it still delivers: its
	// reader must hand over every queued frame before it can read the
	// gateway's answer to the close frame, so closing first would stall for
	// the whole close grace and then drop the frames it still held.
	//
	// From the moment the new connection opened both receive every message
	// published: the bodies the old one delivers from then on are
	// remembered, and the new one's first copy of each is not shown again
	// (body by body, so two messages with the same body are both shown).
	// A body that reached the old one before the new one opened may never
	// reach the new one, so it is not remembered: a later message with
	// the same body is shown. Messages carry no ID on the wire, and a
	// message published during the new one's handshake may still be shown
	// twice; none is lost.
	old := s.conn
	s.recording, s.recordFrom = map[string]int{}, time.Now()
	go func() { _ = old.Close() }()
	for f := range old.Frames() {
		if stop, why, err := s.frame(f); stop || err != nil {
			s.recording = nil
			discard(conn)
			return nil, true, why, err
		}
	}
	// The old connection's record lost matters no more: the new one is
	// registered, and asked for every topic followed.
	s.lostRecord = false
	if s.dups == nil {
		s.dups = map[string]int{}
	}
	for body, n := range s.recording {
		s.dups[body] += n
	}
	s.recording, s.dupsUntil = nil, time.Now().Add(overlapGrace)
	if err := s.attach(conn); err != nil {
		return nil, true, "", err
	}
	return s.renewTimer(), false, "", nil
}

// discard closes a connection whose frames are not to be shown. They are
// taken all the same: its reader, waiting to hand over the next frame of a
// busy topic, would never read the gateway's answer to the close frame,
// and Close would wait out its whole grace for it.
func discard(c Conn) {
	go func(frames <-chan wsclient.Frame) {
		for range frames {
		}
	}(c.Frames())
	_ = c.Close()
}

// close ends the current connection, if any, with a close frame, and
// shows the closed line saying why; errorSays leaves why to the error
// listen exits with, except in --json's line.
func (s *session) close(why string, errorSays bool) {
	if s.conn == nil {
		return
	}
	discard(s.conn)
	s.conn = nil
	if errorSays && !s.p.json {
		// Said once, by the error listen exits with; a --json line keeps
		// it in "reason" for the script reading standard output.
		why = ""
	}
	_ = s.p.emit(Line{Time: s.o.now(), Kind: KindState, State: StateClosed, Code: wsclient.CloseNormalClosure, Reason: why})
}

// wanted is the topic set with the unanswered actions applied: what the
// next connection must follow.
func (s *session) wanted() []string {
	t := slices.Clone(s.topics)
	for _, a := range s.pending {
		t = apply(t, a.name, a.topics)
	}
	return t
}

func apply(set []string, verb string, topics []string) []string {
	switch verb {
	case "subscribe":
		for _, t := range topics {
			if !slices.Contains(set, t) {
				set = append(set, t)
			}
		}
	case "unsubscribe":
		set = slices.DeleteFunc(set, func(t string) bool { return slices.Contains(topics, t) })
	}
	return set
}

// frame shows one received frame: the answer to a pending action, or a
// message. stop reports an exit condition.
func (s *session) frame(f wsclient.Frame) (stop bool, why string, err error) {
	at := s.o.now()
	if l, ok := s.asReply(at, f); ok {
		return false, "", s.p.emit(l)
	}
	if s.duplicate(f) {
		return false, "", nil
	}
	l := messageLine(at, f.Binary, f.Data)
	if l.Topic = bodyTopic(l.Body); l.Topic == "" && len(s.topics) == 1 && s.topics[0] != pubsub.AllTopics {
		l.Topic = s.topics[0]
	}
	if err := s.p.emit(l); err != nil {
		return true, "", err
	}
	s.got++
	if s.timeout != nil {
		s.timeout.Reset(s.o.Timeout)
	}
	if s.o.until != nil && !f.Binary && s.o.until.Match(f.Data) {
		return true, "--until matched", nil
	}
	if s.o.Count > 0 && s.got >= s.o.Count {
		return true, "after " + text.Pluralize(s.got, "message"), nil
	}
	return false, "", nil
}

// duplicate reports whether f is the new connection's copy of a message
// the old one delivered during a renewal's overlap (see renew), and
// remembers a message the old one delivers then.
func (s *session) duplicate(f wsclient.Frame) bool {
	if f.Binary || (s.recording == nil && s.dups == nil) {
		return false
	}
	// A body's hash, not the body (up to 128 KB), is kept.
	key := func() string {
		sum := sha256.Sum256(f.Data)
		return string(sum[:])
	}
	if s.recording != nil {
		if !f.At.Before(s.recordFrom) && len(s.recording) < overlapMemory {
			s.recording[key()]++
		}
		return false
	}
	if time.Now().After(s.dupsUntil) {
		s.dups = nil
		return false
	}
	k := key()
	n := s.dups[k]
	if n == 0 {
		return false
	}
	if n == 1 {
		delete(s.dups, k)
	} else {
		s.dups[k] = n - 1
	}
	if len(s.dups) == 0 {
		s.dups = nil
	}
	return true
}

// asReply recognises the gateway's answer to a pending action. Frames
// carry no type, and a published body may look like an answer
// ({"message":...}, {"type":"error",...}), so a frame is an answer only
// when it has an answer's shape and an action of its kind waits for one,
// the rule socks.js follows (docs/protocol.md): a route's reply, whose
// keys are all a reply's, answers the oldest action of its kind (a pong a
// ping, subscribed a subscribe, unsubscribed an unsubscribe, an error a
// subscribe or an unsubscribe: the ping route always pongs; a refused
// subscribe's error, naming the topics still followed, the oldest
// subscribe that asked for a topic outside them; a subscribed naming
// topics, the oldest subscribe whose topics it all names, and only those
// it names are followed); API Gateway's
// error frame, exactly "message", "connectionId" and "requestId", each a
// string, answers the oldest action, and so does the local gateway's error
// for a frame it dropped over its rate (pubsub.TooManyFrames), which it
// sends in order whatever the action, a ping's too. On API Gateway each frame runs its
// own invocation, so answers may come in another order than the actions.
//
// API Gateway's error frame that answers no action waiting is not a
// message either: socks.js never passes one on. It is shown as the
// gateway's error (kind "error"), as what said it is not known.
func (s *session) asReply(at time.Time, f wsclient.Frame) (Line, bool) {
	if f.Binary || !utf8.Valid(f.Data) {
		// The gateway's answers are UTF-8, as JSON is: one that is not
		// is a message (and --json writes it in base64).
		return Line{}, false
	}
	if len(s.pending) == 0 && !maybeGatewayError(f.Data) {
		// Nothing waits: only API Gateway's error frame is not a message.
		return Line{}, false
	}
	var fields map[string]json.RawMessage
	if err := jsonUnmarshalObject(f.Data, &fields); err != nil {
		return Line{}, false
	}
	var r reply
	var listed map[string]bool // a subscribed reply's topics
	i := -1
	failed := isGatewayError(fields)
	if len(s.pending) == 0 {
		if !failed {
			return Line{}, false
		}
		_ = json.Unmarshal(f.Data, &r)
		return Line{Time: at, Kind: KindError, Body: f.Data, Error: gatewayFailed("a frame", r)}, true
	}
	switch {
	case failed:
		i = 0
	case !isRouteReply(fields) || json.Unmarshal(f.Data, &r) != nil:
		return Line{}, false
	case r.Type == "error" && r.Topics != nil:
		// A refused subscribe, naming the topics still followed: the
		// oldest subscribe that asked for one outside them, as socks.js
		// matches it. Out of order, the oldest would take another's
		// refusal, and the refused topics that one's answer.
		kept := setOf(r.Topics)
		i = slices.IndexFunc(s.pending, func(a action) bool {
			return a.name == "subscribe" && slices.ContainsFunc(a.asked, func(t string) bool { return !kept[t] })
		})
		if i < 0 {
			i = slices.IndexFunc(s.pending, func(a action) bool { return a.name != "ping" })
		}
	case r.Type == "error" && strings.HasPrefix(r.Error, pubsub.TooManyFrames+":"):
		i = 0
	case r.Type == "subscribed" && len(r.Topics) > 0:
		// Naming the topics followed once it ran, all of its own among
		// them: the oldest subscribe whose topics it all names. A
		// refusal run first may name none of the topics of two
		// subscribes waiting, and be taken for the wrong one; this
		// reply then names the other's topics, not the refused one's.
		listed = setOf(r.Topics)
		i = slices.IndexFunc(s.pending, func(a action) bool {
			return a.name == "subscribe" && !slices.ContainsFunc(a.asked, func(t string) bool { return !listed[t] })
		})
		if i < 0 {
			i = slices.IndexFunc(s.pending, func(a action) bool { return a.name == "subscribe" })
		}
	default:
		i = slices.IndexFunc(s.pending, func(a action) bool {
			switch r.Type {
			case "error":
				return a.name != "ping"
			case "pong":
				return a.name == "ping"
			}
			return r.Type == a.name+"d"
		})
	}
	if i < 0 {
		return Line{}, false
	}
	a := s.pending[i]
	l := Line{Time: at, Kind: KindReply, Body: f.Data}
	switch {
	case failed:
		// The route failed, which refuses nothing: as socks.js does,
		// what was typed is kept. A subscribe's topics stay followed and
		// the next connection asks for them; an unsubscribe's go on
		// arriving until then, and it does not ask for them.
		s.settle(i, true)
	case r.Type == "subscribed", r.Type == "unsubscribed":
		// The action's own topics, never the reply's list: the reply
		// may answer out of order (its list then says what the gateway
		// followed at some other moment), and another server's may name
		// topics never asked for. socks.js keeps the page's own list too.
		// A subscribed that does not name one of them cannot have
		// followed it (it was taken for another subscribe's answer):
		// not followed, the next connection does not ask for it, which
		// might refuse that connection whole.
		if p := &s.pending[i]; listed != nil && slices.ContainsFunc(p.topics, func(t string) bool { return !listed[t] }) {
			p.topics = slices.DeleteFunc(slices.Clone(p.topics), func(t string) bool { return !listed[t] })
		}
		s.settle(i, true)
	case r.Type == "pong":
		l.RTTMS = ms(time.Since(a.sent))
		s.settle(i, true)
	case r.Type == "error" && r.Error == routes.NotRegistered && r.Topics == nil:
		// The gateway lost the connection's record: nothing published
		// reaches it. The main loop opens a fresh one (see unregistered),
		// which asks for what was typed, a subscribe so answered too, as
		// socks.js does.
		s.settle(i, true)
		s.lostRecord = true
	case r.Type == "error" && strings.HasPrefix(r.Error, pubsub.TooManyFrames+":") && r.Topics == nil:
		// socks serve dropped the frame over its rate: it did not route
		// it, so, as for one whose route failed and as in socks.js, what
		// was typed is kept. A subscribe's topics are asked for by the
		// next connection (this one does not follow them); an
		// unsubscribe's go on arriving until then.
		s.settle(i, true)
	default:
		// A refusal: a subscribe's topics are not followed, nor asked for
		// by the next connection (a connect naming one the gateway
		// refuses is refused whole). An unsubscribe's go on arriving
		// until the next connection, which, as for one whose route failed
		// and as in socks.js, does not ask for them: what was typed is
		// kept.
		s.settle(i, a.name == "unsubscribe")
	}
	return l, true
}

// maxGatewayError bounds the frames taken for a look as API Gateway's
// error frame: its message is a few words, its IDs short.
const maxGatewayError = 4096

// maybeGatewayError is a cheap look at a frame for API Gateway's error
// frame (isGatewayError decides), so that a message nothing waits for
// is not decoded twice, nor a big one looked through.
func maybeGatewayError(data []byte) bool {
	return len(data) <= maxGatewayError && bytes.Contains(data, []byte(`"requestId"`)) && bytes.Contains(data, []byte(`"connectionId"`))
}

// gatewayFailed says that API Gateway's error frame r answered what.
func gatewayFailed(what string, r reply) string {
	return fmt.Sprintf("the gateway failed %s (requestId %s): %s", what, r.RequestID, r.Message)
}

// settle takes the answered action pending[i] off the list, and applies its
// topics to what was asked for when it took effect. Actions apply in the
// order they were typed, whatever the order of their answers: for each of
// its topics, an effect answered for is certain, so any earlier action
// still waiting no longer decides that topic ("subscribe b", "unsubscribe
// b", answered unsubscribed then subscribed, leaves b unfollowed).
func (s *session) settle(i int, applied bool) {
	a := s.pending[i]
	s.pending = slices.Delete(s.pending, i, i+1)
	if !applied || len(a.topics) == 0 {
		return
	}
	if i > 0 {
		// A set: a typed line may name thousands of topics, and up to
		// maxPending actions wait.
		decided := setOf(a.topics)
		for j := range s.pending[:i] {
			if p := &s.pending[j]; slices.ContainsFunc(p.topics, func(t string) bool { return decided[t] }) {
				// A copy: the frame sent may still hold the typed list.
				p.topics = slices.DeleteFunc(slices.Clone(p.topics), func(t string) bool { return decided[t] })
			}
		}
	}
	s.topics = apply(s.topics, a.name, a.topics)
}

// setOf is the set of topics ts.
func setOf(ts []string) map[string]bool {
	set := make(map[string]bool, len(ts))
	for _, t := range ts {
		set[t] = true
	}
	return set
}

// replyFields are the keys a route's reply may have (routes.Reply).
var replyFields = []string{"type", "topics", "error", "time"}

// isRouteReply reports whether an object's keys are all a route reply's,
// its "type" among them.
func isRouteReply(fields map[string]json.RawMessage) bool {
	if _, ok := fields["type"]; !ok {
		return false
	}
	for k := range fields {
		if !slices.Contains(replyFields, k) {
			return false
		}
	}
	return true
}

// isGatewayError reports whether an object is API Gateway's own error
// frame, sent in place of a route's reply when the route failed
// ("Internal server error") or there is none ("Forbidden"): those three
// keys, each a string, and no other.
func isGatewayError(fields map[string]json.RawMessage) bool {
	if len(fields) != 3 {
		return false
	}
	for _, k := range []string{"message", "connectionId", "requestId"} {
		if v := bytes.TrimSpace(fields[k]); len(v) == 0 || v[0] != '"' {
			return false
		}
	}
	return true
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// command runs one typed line.
func (s *session) command(line string) (quit bool, err error) {
	c, perr := parseCommand(line)
	if perr != nil {
		return false, s.notice("%v", perr)
	}
	switch c.verb {
	case "":
		return false, nil
	case "quit":
		return true, nil
	case "help":
		return false, s.notice("%s", helpText)
	case "ping":
		if s.conn == nil {
			return false, s.notice("not connected: ping again once reconnected")
		}
		return false, s.send(action{name: "ping", sent: time.Now()}, map[string]string{"action": "ping"})
	}
	next := apply(s.wanted(), c.verb, c.topics)
	if len(next) == 0 {
		return false, s.notice("that would leave no topic to follow (a connection always follows at least one); use quit to stop")
	}
	if len(next) > pubsub.MaxTopicsPerConnection {
		return false, s.notice("a connection may follow at most %d topics; that would make %d", pubsub.MaxTopicsPerConnection, len(next))
	}
	if s.conn == nil {
		s.topics = next
		return false, s.notice("not connected: the next connection will follow %s", topicList(next))
	}
	return false, s.send(action{name: c.verb, asked: c.topics, topics: c.topics, sent: time.Now()},
		map[string]any{"action": c.verb, "topics": c.topics})
}

// maxPending bounds the typed actions that wait for the gateway's
// answer on a connection: a gateway that never answers would otherwise
// have a piped stream of commands (`yes ping | socks listen`) grow the
// list without end, and each subscribe walk all of it.
const maxPending = 256

func (s *session) send(a action, frame any) error {
	if len(s.pending) >= maxPending {
		if s.capped {
			return nil
		}
		s.capped = true
		return s.notice("not sent: %d commands already wait for the gateway's answer (is it answering?); what is typed is ignored until it answers one", maxPending)
	}
	if err := s.conn.TrySendJSON(frame); err != nil {
		if errors.Is(err, wsclient.ErrSendQueueFull) {
			// Waiting for room would stall everything else for up to
			// the writer's write wait (10 s). What is queued goes in
			// order; this is not queued.
			return s.notice("not sent: the gateway is not reading (%d frames wait to be written to it); type it again once it reads", wsclient.SendQueue)
		}
		return s.notice("not sent: %v", err)
	}
	s.capped = false
	s.pending = append(s.pending, a)
	return nil
}
