package pubsub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The shapes a queue message may have. Backends that do not write plain
// envelopes reach the queue through EventBridge (a rule targeting the
// queue) or SNS (the queue subscribed to a topic):
//
//   - ShapeEnvelope: a plain envelope (also what SNS delivers with raw
//     message delivery on);
//   - ShapeEventBridge: an EventBridge event whose "detail" is an envelope,
//     or is turned into one by a Mapping;
//   - ShapeSNS: an SNS notification ("Type": "Notification") whose
//     "Message" is the JSON text of an envelope.
//
// SNS also sends the queue its own messages about the subscription, which
// carry no envelope and are never delivered: ParseMessage refuses them
// with what to do (SNSConfirmationError).
//
//   - ShapeSNSSubscribe: "Type": "SubscriptionConfirmation", sent when a
//     topic of another account subscribes the queue; SNS delivers nothing
//     until the queue's owner confirms it with its Token;
//   - ShapeSNSUnsubscribe: "Type": "UnsubscribeConfirmation", sent when the
//     subscription is deleted; its Token restores it.
const (
	ShapeEnvelope       = "envelope"
	ShapeEventBridge    = "EventBridge event"
	ShapeSNS            = "SNS notification"
	ShapeSNSSubscribe   = "SNS subscription confirmation"
	ShapeSNSUnsubscribe = "SNS unsubscribe confirmation"
)

// What `socks publish --as eventbridge` puts in an entry by default, and
// what `socks provision --eventbridge-rule` matches by default.
const (
	DefaultEventSource = "socks"
	DefaultDetailType  = "envelope"
)

// Producer limits: SNS messages and EventBridge PutEvents entries hold at
// most 256 KB.
const (
	MaxSNSMessageBytes       = 256 * 1024
	MaxEventBridgeEntryBytes = 256 * 1024
)

// wrapper holds the fields that tell the shapes apart.
type wrapper struct {
	// EventBridge.
	ID         string          `json:"id"`
	DetailType *string         `json:"detail-type"`
	Source     *string         `json:"source"`
	Detail     json.RawMessage `json:"detail"`
	// SNS.
	Type      string  `json:"Type"`
	Message   *string `json:"Message"`
	MessageID string  `json:"MessageId"`
	TopicARN  string  `json:"TopicArn"`
	Token     string  `json:"Token"`
}

// wrapperKeys are the keys socks reads of an EventBridge event or an SNS
// message, as they write them.
var wrapperKeys = KeysOf[wrapper]()

// Shape tells which shape a queue message has (ShapeEnvelope when it is
// neither an EventBridge event nor an SNS notification), by its keys as
// written.
func Shape(data []byte) string {
	var w wrapper
	if wrapperKeys.decode(data, &w) != nil {
		return ShapeEnvelope
	}
	return w.shape()
}

// caseOfShape refuses a queue message data one of whose keys differs from
// a key of EventBridge's or SNS's only by case (why, from CheckKeys with
// wrapperKeys, says which; "" when none does): its shape
// read by its keys as written (Shape) would not be the shape
// encoding/json reads. A plain envelope either way may have one, unknown
// to it ("type"), which it ignores.
func caseOfShape(data []byte, why string) error {
	if why == "" {
		return nil
	}
	if shape := Shape(data); shape != ShapeEnvelope {
		return &InvalidError{Field: shape, Reason: why}
	}
	var folded wrapper
	if json.Unmarshal(data, &folded) == nil && folded.shape() != ShapeEnvelope {
		return invalid("envelope", "%s (read whatever its case, it would be an %s)", why, folded.shape())
	}
	return nil
}

func (w wrapper) shape() string {
	switch {
	case w.DetailType != nil && w.Source != nil && len(w.Detail) > 0:
		return ShapeEventBridge
	case w.Type == "Notification" && w.Message != nil:
		return ShapeSNS
	case w.Type == "SubscriptionConfirmation" && w.TopicARN != "":
		return ShapeSNSSubscribe
	case w.Type == "UnsubscribeConfirmation" && w.TopicARN != "":
		return ShapeSNSUnsubscribe
	}
	return ShapeEnvelope
}

// ParseMessage decodes a queue message of any shape into the envelope it
// carries: a plain envelope as ParseEnvelope does; an EventBridge event's
// detail, or, when the detail is not an envelope and m is set, the envelope
// m maps the event to; an SNS notification's Message. A message whose
// wrapped content is not an envelope is an *InvalidError naming the shape.
// A wrapped envelope without an ID takes the event's or notification's.
func ParseMessage(data []byte, m *Mapping) (Envelope, error) {
	var w wrapper
	if json.Unmarshal(data, &w) != nil {
		return ParseEnvelope(data) // says what is wrong with the JSON
	}
	// With no key of EventBridge's or SNS's in another case, w holds
	// their keys as written.
	if w.shape() != ShapeEnvelope {
		if err := caseOfShape(data, wrapperKeys.checkRaw(data)); err != nil {
			return Envelope{}, err
		}
	}
	var (
		env Envelope
		err error
		id  string
	)
	switch w.shape() {
	case ShapeEventBridge:
		id = w.ID
		env, err = ParseEnvelope(w.Detail)
		if err != nil && m != nil && !isEnvelopeLike(w.Detail) {
			env, err = m.Apply(data)
			if err != nil {
				return Envelope{}, fmt.Errorf("%s (source %q, detail-type %q) %w", ShapeEventBridge, *w.Source, *w.DetailType, err)
			}
		} else if err == nil {
			// EventBridge re-encodes the detail (moto with spaces after
			// ":" and ","); deliver the body compact, as published.
			env.Body = compact(env.Body)
		} else {
			hint := ""
			if m == nil && !isEnvelopeLike(w.Detail) {
				hint = "; configure a mapping (docs/protocol.md) to turn such events into envelopes"
			}
			return Envelope{}, &InvalidError{Field: ShapeEventBridge, Reason: fmt.Sprintf("(source %q, detail-type %q): detail is not an envelope: %v%s", *w.Source, *w.DetailType, err, hint)}
		}
	case ShapeSNS:
		id = w.MessageID
		env, err = ParseEnvelope([]byte(*w.Message))
		if err != nil {
			return Envelope{}, &InvalidError{Field: ShapeSNS, Reason: fmt.Sprintf("(MessageId %q): Message is not an envelope: %v", w.MessageID, err)}
		}
	case ShapeSNSSubscribe, ShapeSNSUnsubscribe:
		return Envelope{}, snsConfirmation(w)
	default:
		v, why := checkObject(data, envelopeKeys)
		if obj, ok := v.(map[string]any); ok {
			if err := caseOfShape(data, CheckKeys(obj, wrapperKeys)); err != nil {
				return Envelope{}, err
			}
		}
		return parseEnvelope(data, why)
	}
	if env.ID == "" && id != "" && ValidateMessageID(id) == nil {
		env.ID = id
	}
	return env, nil
}

// snsConfirmation is the refusal of an SNS subscription or unsubscribe
// confirmation: an *InvalidError (the broker dead-letters it at once)
// whose reason names the topic and gives the command that confirms the
// subscription, or restores it, with the message's Token. The Token is no
// secret from the queue's owner, who alone reads the dead letters; the
// SubscribeURL is never visited. A TopicArn or Token that is not as SNS
// writes them (anyone allowed to send to the queue can write such a
// message) is not put in a command to be pasted into a shell.
func snsConfirmation(w wrapper) error {
	shape := w.shape()
	if !snsTopicARN.MatchString(w.TopicARN) || len(w.Token) > 2048 || !snsToken.MatchString(w.Token) {
		return &InvalidError{Field: shape, Reason: fmt.Sprintf("(MessageId %q): not from SNS as far as can be told (its TopicArn or Token is not as SNS writes them); not delivered", w.MessageID)}
	}
	cmd := fmt.Sprintf("`aws sns confirm-subscription --topic-arn %s --token %s`", w.TopicARN, w.Token)
	if shape == ShapeSNSUnsubscribe {
		return &InvalidError{Field: shape, Reason: fmt.Sprintf("(topic %s): the subscription was deleted and SNS delivers nothing more from the topic; "+
			"to restore it, run %s (socks never visits the SubscribeURL)", w.TopicARN, cmd)}
	}
	return &InvalidError{Field: shape, Reason: fmt.Sprintf("(topic %s): SNS delivers nothing from the topic until the queue's owner confirms the subscription: "+
		"run %s (socks never visits the SubscribeURL), then socks provision to check it", w.TopicARN, cmd)}
}

var (
	snsTopicARN = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$`)
	snsToken    = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// isEnvelopeLike reports whether raw is an object with a "topics" key: an
// attempt at an envelope, which a mapping must not reinterpret. The key is
// matched whatever its case (encoding/json: "Topics" or "topiCs" too), so
// that a detail ParseEnvelope refuses for the case of its key is refused
// with that reason, not mapped.
func isEnvelopeLike(raw json.RawMessage) bool {
	var o struct {
		Topics json.RawMessage `json:"topics"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return false
	}
	return len(o.Topics) > 0
}

// Mapping turns an EventBridge event whose detail is not an envelope into
// one. Every path is a JSON pointer (RFC 6901) into the whole event, so
// "/detail/entityId" is detail.entityId and "/detail-type" the detail type:
//
//	topics = ["/detail/entityId"]      # or ["orders", "/detail-type"]
//	users  = "/detail/userId"          # optional
//	body   = "/detail"                 # optional, the default
//
// An entry of Topics that starts with "/" is a pointer; any other entry is
// a topic name taken as is. A pointer must find a string or an array of
// strings. Users, when set, must find at least one user: an event whose
// users are missing is refused, never delivered to every subscriber.
type Mapping struct {
	Topics []string `toml:"topics" json:"topics"`
	Users  string   `toml:"users" json:"users,omitempty"`
	Body   string   `toml:"body" json:"body,omitempty"`
}

// String shows the mapping on one line: topics=... users=... body=...
func (m Mapping) String() string {
	body := m.Body
	if body == "" {
		body = DefaultMappingBody
	}
	s := "topics=" + strings.Join(m.Topics, ",")
	if m.Users != "" {
		s += " users=" + m.Users
	}
	return s + " body=" + body
}

// DefaultMappingBody is the body a mapping delivers when Body is unset.
const DefaultMappingBody = "/detail"

// Check validates the mapping's syntax.
func (m *Mapping) Check() error {
	if len(m.Topics) == 0 {
		return invalid("mapping topics", "is empty: give a pointer such as \"/detail/entityId\" or a topic name")
	}
	for i, t := range m.Topics {
		field := fmt.Sprintf("mapping topics[%d]", i)
		if strings.HasPrefix(t, "/") {
			if err := checkPointer(field, t); err != nil {
				return err
			}
			continue
		}
		if err := ValidateTopic(t); err != nil {
			return invalid(field, "%q is neither a JSON pointer (starting with \"/\") nor a valid topic: %v", t, err)
		}
	}
	if m.Users != "" {
		if err := checkPointer("mapping users", m.Users); err != nil {
			return err
		}
	}
	if m.Body != "" {
		if err := checkPointer("mapping body", m.Body); err != nil {
			return err
		}
	}
	return nil
}

func checkPointer(field, p string) error {
	if !strings.HasPrefix(p, "/") {
		return invalid(field, "%q is not a JSON pointer: start it with \"/\", as in \"/detail/userId\"", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 >= len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return invalid(field, "%q has a \"~\" not followed by 0 or 1 (write \"~0\" for \"~\" and \"~1\" for \"/\")", p)
		}
	}
	return nil
}

// Apply maps a whole event (the JSON of it) to an envelope.
func (m *Mapping) Apply(event []byte) (Envelope, error) {
	if err := m.Check(); err != nil {
		return Envelope{}, err
	}
	var env Envelope
	for _, t := range m.Topics {
		if !strings.HasPrefix(t, "/") {
			env.Topics = append(env.Topics, t)
			continue
		}
		vals, err := pointStrings(event, t)
		if err != nil {
			return Envelope{}, invalid("mapping topics", "%s", err)
		}
		env.Topics = append(env.Topics, vals...)
	}
	env.Topics = Unique(env.Topics)
	if m.Users != "" {
		vals, err := pointStrings(event, m.Users)
		if err != nil {
			return Envelope{}, invalid("mapping users", "%s; the event is not delivered to every subscriber instead", err)
		}
		env.Users = Unique(vals)
	}
	body := m.Body
	if body == "" {
		body = DefaultMappingBody
	}
	raw, err := Point(event, body)
	if err != nil {
		return Envelope{}, invalid("mapping body", "%s", err)
	}
	env.Body = compact(raw)
	if err := env.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("mapped to an invalid envelope: %w", err)
	}
	return env, nil
}

func compact(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}

// pointStrings resolves pointer p in doc to a non-empty list of non-empty
// strings: a string or an array of strings.
func pointStrings(doc []byte, p string) ([]string, error) {
	raw, err := Point(doc, p)
	if err != nil {
		return nil, err
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, fmt.Errorf("%s is an empty string", p)
		}
		return []string{one}, nil
	}
	// Pointers, so that a null entry is told from an empty string: both
	// name no one, but the error says which it was.
	var many []*string
	if json.Unmarshal(raw, &many) != nil {
		return nil, fmt.Errorf("%s is %s, not a string or an array of strings", p, kind(raw))
	}
	if len(many) == 0 {
		return nil, fmt.Errorf("%s is an empty array", p)
	}
	out := make([]string, len(many))
	for i, s := range many {
		switch {
		case s == nil:
			return nil, fmt.Errorf("%s/%d is null", p, i)
		case *s == "":
			return nil, fmt.Errorf("%s/%d is an empty string", p, i)
		}
		out[i] = *s
	}
	return out, nil
}

func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// Point resolves the JSON pointer p (RFC 6901) in doc and returns the value
// found there, byte for byte. Finding nothing is an error saying where.
func Point(doc []byte, p string) (json.RawMessage, error) {
	cur := json.RawMessage(doc)
	if p == "" {
		return cur, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%q is not a JSON pointer", p)
	}
	seen := ""
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		seen += "/" + tok
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) == nil && obj != nil {
			v, ok := obj[tok]
			if !ok {
				return nil, fmt.Errorf("nothing at %s", seen)
			}
			cur = v
			continue
		}
		var arr []json.RawMessage
		if json.Unmarshal(cur, &arr) == nil && arr != nil {
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(arr) || (len(tok) > 1 && tok[0] == '0') {
				return nil, fmt.Errorf("nothing at %s (an array of %d)", seen, len(arr))
			}
			cur = arr[i]
			continue
		}
		return nil, fmt.Errorf("nothing at %s (%s is %s)", seen, strings.TrimSuffix(seen, "/"+tok), kind(cur))
	}
	if bytes.Equal(bytes.TrimSpace(cur), []byte("null")) {
		return nil, fmt.Errorf("nothing at %s (null)", p)
	}
	return cur, nil
}
