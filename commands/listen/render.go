package listen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/ui"
)

// Kinds of output lines.
const (
	KindMessage = "message" // a frame the gateway pushed
	KindReply   = "reply"   // the gateway's answer to a typed action
	KindState   = "state"   // the connection changed state
	KindPing    = "ping"    // a keepalive round trip (--show-ping)
	// KindError is API Gateway's error frame that answers no action
	// waiting: the gateway's, not a published message.
	KindError  = "error"
	kindNotice = "notice" // help and input mistakes: terminal or stderr only
)

// States of the connection.
const (
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
	StateReconnecting = "reconnecting"
	StateRenewing     = "renewing"
	StateClosed       = "closed"
)

// Line is one event: a --json output line, and what the terminal renders.
type Line struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Topic is set when known: the body's own "topic" field, or the one
	// topic the listener follows.
	Topic string `json:"topic,omitempty"`
	// Exactly one of Body (a JSON body), Text (UTF-8 text that is not JSON)
	// and Base64 (a binary frame, or text that is not valid UTF-8) is set
	// for a message; a reply has Body.
	Body   json.RawMessage `json:"body,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Base64 []byte          `json:"base64,omitzero"` // "" for an empty binary frame
	Binary bool            `json:"binary,omitempty"`
	// State lines.
	State     string   `json:"state,omitempty"`
	URL       string   `json:"url,omitempty"`
	Geek      string   `json:"geek,omitempty"`
	Topics    []string `json:"topics,omitempty"`
	Code      int      `json:"code,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Error     string   `json:"error,omitempty"`
	RetryInMS int64    `json:"retryInMs,omitempty"`
	Attempt   int      `json:"attempt,omitempty"`
	// MaxAttempts is --max-retries (0: unlimited).
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// RTTMS is a ping's round trip (ping lines and pong replies).
	RTTMS float64 `json:"rttMs,omitempty"`
}

// messageLine classifies a frame's payload.
func messageLine(at time.Time, binary bool, data []byte) Line {
	l := Line{Time: at, Kind: KindMessage}
	switch {
	case binary:
		l.Base64, l.Binary = nonNil(data), true
	case !utf8.Valid(data):
		l.Base64 = nonNil(data)
	case json.Valid(data):
		l.Body = bytes.TrimSpace(data)
	default:
		s := string(data)
		l.Text = &s
	}
	return l
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// bodyTopic returns the body's own top-level "topic" string, if any.
func bodyTopic(body json.RawMessage) string {
	if len(body) == 0 || body[0] != '{' {
		return ""
	}
	var probe struct {
		Topic any `json:"topic"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return ""
	}
	s, _ := probe.Topic.(string)
	return s
}

// TimeFormat is how listen writes a time outside a terminal (--json, and
// state lines on a standard error that is not one): RFC 3339 in UTC to the
// millisecond, as docs/json.md says, with its three digits always, so that
// every time of a stream has one width and the lines sort as text (Go's
// RFC3339Nano drops trailing zeros: "05Z" sorted after "05.5Z").
const TimeFormat = pubsub.TimeMillis

// stampUTC is t as TimeFormat writes it, in UTC.
func stampUTC(t time.Time) string { return t.UTC().Format(TimeFormat) }

// writeJSON writes l as one line of JSON, its time as TimeFormat
// (docs/json.md). Characters a terminal could act on that
// encoding/json leaves raw (DEL, C1 controls, bidi overrides) are escaped
// too, so that `socks listen --json` on a terminal is safe; on one whose
// locale is not UTF-8 the line is written as data (iostreams.ForData).
func writeJSON(w io.Writer, l Line) error {
	// The outer "time" hides Line's own, which encoding/json would write
	// as RFC3339Nano; it stays first.
	out := struct {
		Time string `json:"time"`
		Line
	}{stampUTC(l.Time), l}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(iostreams.ForData(w), text.EscapeJSON(buf.String()))
	return err
}

// unsafeRune reports runes a terminal may interpret (text.UnsafeRune).
func unsafeRune(r rune) bool { return text.UnsafeRune(r) }

// Sanitize makes text from outside safe to print (text.Sanitize).
func Sanitize(s string, keepNewlines bool) string { return text.Sanitize(s, keepNewlines) }

// renderer draws lines for people: the terminal layout (local clock times
// with milliseconds, glyphs, pretty-printed JSON), or plain text with
// RFC 3339 times for state lines on a standard error that is not read as
// data.
type renderer struct {
	st   *ui.UI
	term bool
	loc  *time.Location
	// maxDump bounds the bytes shown of a binary message.
	maxDump int
}

func newRenderer(st *ui.UI, term bool, loc *time.Location) *renderer {
	if loc == nil {
		loc = time.Local
	}
	return &renderer{st: st, term: term, loc: loc, maxDump: 256}
}

func (r *renderer) stamp(t time.Time) string {
	if !r.term {
		return stampUTC(t)
	}
	return r.st.Muted.Render(t.In(r.loc).Format("15:04:05.000"))
}

// header is the terminal's opening block.
func (r *renderer) header(endpoint, geek string, topics []string, typing bool) string {
	st := r.st
	var b strings.Builder
	b.WriteString(st.Title.Render("socks listen") + "\n")
	row := func(k, v string) { fmt.Fprintf(&b, "  %s %s\n", st.Label.Render(fmt.Sprintf("%-9s", k)), v) }
	row("endpoint", st.Accent.Render(r.text(endpoint, false)))
	row("geek", st.Accent.Render(r.name(geek)))
	row("topics", r.topics(topics))
	row("state", st.Warn.Render("connecting…"))
	if typing {
		row("type", st.Muted.Render("subscribe T…  unsubscribe T…  ping  quit  help"))
	}
	return b.String()
}

// topicList names topics for people, each shown as text.SanitizeName
// shows a name.
func topicList(topics []string) string {
	if len(topics) == 1 && topics[0] == pubsub.AllTopics {
		return ". (every topic)"
	}
	if len(topics) == 0 {
		return "(none)"
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = text.SanitizeName(t)
	}
	return strings.Join(names, ", ")
}

// render draws one line (ending in a newline).
func (r *renderer) render(l Line) string {
	switch l.Kind {
	case KindMessage:
		return r.message(l)
	case KindReply:
		return r.reply(l)
	case KindState:
		return r.state(l)
	case KindPing:
		return r.prefix(l, r.st.Muted.Render(r.glyph("·")+"ping "+rtt(l.RTTMS))) + "\n"
	case KindError:
		return r.prefix(l, r.st.Bad.Render(r.glyph("✗")+r.text(l.Error, false))) + "\n"
	default:
		return r.prefix(l, r.text(l.Error, false)) + "\n"
	}
}

// text is running text from outside for r's terminal: what it would
// act on shown escaped (text.Sanitize), and, on one whose locale is not
// UTF-8, what is not ASCII (ui.UI.ForLocale).
func (r *renderer) text(s string, keepNewlines bool) string {
	return r.st.ForLocale(text.Sanitize(s, keepNewlines))
}

// name is a name from outside for r's terminal (text.SanitizeName,
// ui.UI.ForLocale).
func (r *renderer) name(s string) string { return r.st.ForLocale(text.SanitizeName(s)) }

// topics names topics for r's terminal (topicList, ui.UI.ForLocale).
func (r *renderer) topics(topics []string) string { return r.st.ForLocale(topicList(topics)) }

func (r *renderer) glyph(g string) string {
	if !r.term {
		return ""
	}
	return g + " "
}

func (r *renderer) prefix(l Line, rest string) string {
	return r.stamp(l.Time) + " " + rest
}

func rtt(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func (r *renderer) message(l Line) string {
	st := r.st
	head := r.stamp(l.Time)
	if l.Topic != "" {
		head += " " + st.Accent.Render(r.name(l.Topic))
	}
	var body string
	switch {
	case l.Body != nil:
		var err error
		if body, err = prettyJSON(st, l.Body); err != nil {
			body = r.text(string(l.Body), true)
		} else {
			body = st.ForLocale(body)
		}
	case l.Text != nil:
		body = r.text(*l.Text, true)
		if body == "" {
			body = st.Muted.Render("(empty text)")
		}
	default:
		what := "binary"
		if !l.Binary {
			what = "text that is not valid UTF-8"
		}
		head += " " + st.Muted.Render(fmt.Sprintf("(%s, %d bytes)", what, len(l.Base64)))
		body = r.dump(l.Base64)
		if body == "" {
			return head + "\n"
		}
		return head + "\n" + indent(body) + "\n"
	}
	if !strings.Contains(body, "\n") {
		return head + " " + body + "\n"
	}
	return head + "\n" + indent(body) + "\n"
}

// dump is a hex dump (offsets, hex, printable ASCII) of at most maxDump
// bytes.
func (r *renderer) dump(data []byte) string {
	shown := data
	if len(shown) > r.maxDump {
		shown = shown[:r.maxDump]
	}
	d := strings.TrimRight(hex.Dump(shown), "\n")
	if more := len(data) - len(shown); more > 0 {
		d += "\n" + r.st.Muted.Render(fmt.Sprintf("… %d more bytes", more))
	}
	return d
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// reply is the gateway's answer to an action.
type reply struct {
	Type   string   `json:"type"`
	Topics []string `json:"topics"`
	Error  string   `json:"error"`
	// Message is API Gateway's (and the local gateway's) answer when a
	// route handler failed: {"message":"Internal server error",...}.
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

func (r *renderer) reply(l Line) string {
	st := r.st
	var rp reply
	_ = json.Unmarshal(l.Body, &rp)
	arrow := r.glyph("←")
	switch rp.Type {
	case "subscribed", "unsubscribed":
		return r.prefix(l, st.Good.Render(arrow+rp.Type)+" "+r.topics(rp.Topics)) + "\n"
	case "pong":
		s := st.Good.Render(arrow + "pong")
		if l.RTTMS > 0 {
			s += " " + st.Muted.Render(rtt(l.RTTMS))
		}
		return r.prefix(l, s) + "\n"
	case "error":
		return r.prefix(l, st.Bad.Render(arrow+"error")+" "+r.text(rp.Error, false)) + "\n"
	}
	msg := rp.Message
	if msg == "" {
		msg = string(l.Body)
	}
	return r.prefix(l, st.Bad.Render(arrow+"error")+" "+r.text(msg, false)) + "\n"
}

func (r *renderer) state(l Line) string {
	st := r.st
	var s string
	switch l.State {
	case StateConnected:
		s = st.Good.Render(r.glyph("●")+"connected") + " " + r.text(l.URL, false) + " as " + st.Accent.Render(r.name(l.Geek)) + " on " + r.topics(l.Topics)
	case StateDisconnected:
		s = st.Warn.Render(r.glyph("○")+"disconnected") + ": " + st.ForLocale(closeText(l))
	case StateReconnecting:
		s = st.Warn.Render(r.glyph("↻")+"reconnecting") + " in " + (time.Duration(l.RetryInMS) * time.Millisecond).String()
		if l.MaxAttempts > 0 {
			s += st.Muted.Render(fmt.Sprintf(" (attempt %d of %d)", l.Attempt, l.MaxAttempts))
		} else {
			s += st.Muted.Render(fmt.Sprintf(" (attempt %d)", l.Attempt))
		}
		if l.Error != "" {
			s += st.Muted.Render(": " + r.text(l.Error, false))
		}
	case StateRenewing:
		s = st.Muted.Render(r.glyph("↻")+"renewing") + " the connection before the gateway's " + (pubsub.MaxConnectionDuration).String() + " limit"
		if l.Error != "" {
			s += st.Muted.Render(": " + r.text(l.Error, false))
		}
	case StateClosed:
		s = st.Muted.Render(r.glyph("■") + "closed")
		if l.Reason != "" {
			s += " " + st.Muted.Render("("+r.text(l.Reason, false)+")")
		}
	default:
		s = r.text(l.State, false)
	}
	return r.prefix(l, strings.TrimRight(s, " ")) + "\n"
}

func closeText(l Line) string {
	switch {
	case l.Code != 0 && l.Reason != "":
		return fmt.Sprintf("%d %s", l.Code, Sanitize(l.Reason, false))
	case l.Code != 0:
		return fmt.Sprint(l.Code)
	}
	return Sanitize(l.Error, false)
}

// maxPrettyDepth bounds the nesting prettyJSON indents: deeper bodies are
// shown compact, so that a small message cannot fill the screen with
// indentation.
const maxPrettyDepth = 32

var errTooDeep = errors.New("nested too deep to indent")

// prettyJSON indents a JSON value and colours it: keys, strings, numbers,
// booleans and null each in their own style. Strings are re-escaped, so no
// control character reaches the terminal.
func prettyJSON(st *ui.UI, data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type level struct {
		object bool
		n      int
	}
	var (
		b        strings.Builder
		stack    []level
		afterKey bool
	)
	newItem := func() {
		if afterKey {
			afterKey = false
			return
		}
		if len(stack) == 0 {
			return
		}
		top := &stack[len(stack)-1]
		if top.n > 0 {
			b.WriteByte(',')
		}
		top.n++
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("  ", len(stack)))
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				newItem()
				b.WriteRune(rune(d))
				stack = append(stack, level{object: d == '{'})
				if len(stack) > maxPrettyDepth {
					return "", errTooDeep
				}
			default:
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if top.n > 0 {
					b.WriteByte('\n')
					b.WriteString(strings.Repeat("  ", len(stack)))
				}
				b.WriteRune(rune(d))
			}
			continue
		}
		if s, ok := tok.(string); ok && len(stack) > 0 && stack[len(stack)-1].object && !afterKey {
			newItem()
			b.WriteString(st.Accent.Render(quote(s)) + ": ")
			afterKey = true
			continue
		}
		newItem()
		switch v := tok.(type) {
		case string:
			b.WriteString(st.Good.Render(quote(v)))
		case json.Number:
			b.WriteString(st.Warn.Render(v.String()))
		case bool:
			b.WriteString(st.Code.Render(fmt.Sprint(v)))
		case nil:
			b.WriteString(st.Muted.Render("null"))
		}
	}
	return b.String(), nil
}

// quote writes s as a JSON string with every unsafe rune escaped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafeRune(r):
			text.WriteJSONEscape(&b, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
