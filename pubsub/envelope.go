package pubsub

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Envelope is what publishers put on the queue. Its JSON form is compatible
// with the system socks grew from:
//
//	{"users":["Friendless"],"topics":["updates"],"body":{...},"id":"optional"}
//
// Users absent or empty addresses every subscriber of Topics.
type Envelope struct {
	ID     string          `json:"id,omitempty"`
	Users  []string        `json:"users,omitempty"`
	Topics []string        `json:"topics"`
	Body   json.RawMessage `json:"body"`

	// FollowUp is set on an envelope the broker hands on for the
	// recipients a delivery failed for (see followup.go); publishers leave
	// it out.
	FollowUp
}

// ParseEnvelope decodes and validates an envelope read from a queue or a file.
// Unknown fields are ignored so that newer publishers do not poison older
// brokers; a key that differs from one of the envelope's only by case
// ("Users", see Keys) is refused, and so is everything else that is wrong,
// each with an *InvalidError.
func ParseEnvelope(data []byte) (Envelope, error) {
	_, why := checkObject(data, envelopeKeys)
	return parseEnvelope(data, why)
}

// envelopeKeys are the keys of an envelope.
var envelopeKeys = KeysOf[Envelope]()

// parseEnvelope is ParseEnvelope once checkObject said why data is no
// envelope, or "".
func parseEnvelope(data []byte, why string) (Envelope, error) {
	if why != "" {
		return Envelope{}, invalid("envelope", "%s", why)
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return Envelope{}, invalid("envelope", "%s", DescribeJSONError(err))
	}
	if err := env.Validate(); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// Validate checks the envelope against the names and limits.
func (e Envelope) Validate() error {
	if e.ID != "" {
		if err := ValidateMessageID(e.ID); err != nil {
			return err
		}
	}
	// The users addressed, as publish --geek counts them: a user named
	// twice is one.
	if n := len(Unique(e.Users)); n > MaxUsersPerEnvelope {
		return invalid("the user list", "names %d distinct users; at most %d are allowed", n, MaxUsersPerEnvelope)
	}
	for _, u := range e.Users {
		if err := ValidateGeek(u); err != nil {
			return err
		}
	}
	if len(e.Topics) == 0 {
		return invalid("topics", "is empty: give at least one topic (%q means every topic)", AllTopics)
	}
	if err := ValidateTopics(e.Topics); err != nil {
		return err
	}
	if n := EnvelopeLookups(e.Users, e.Topics); n > MaxLookupsPerEnvelope {
		return invalid("envelope", "addresses %d users and %d topics, which costs %d lookups (users × (topics + 1)); at most %d are allowed: split it into several envelopes",
			len(Unique(e.Users)), len(Unique(e.Topics)), n, MaxLookupsPerEnvelope)
	}
	if err := ValidateBody(e.Body); err != nil {
		return err
	}
	return e.FollowUp.validate()
}

// EnvelopeLookups is how many key lookups finding the targets of an
// envelope costs: one per topic plus one for the wildcard subscribers, for
// each addressed user (or once when it addresses everyone).
func EnvelopeLookups(users, topics []string) int {
	return max(len(Unique(users)), 1) * (len(Unique(topics)) + 1)
}

// ValidateBody checks that body is one JSON value that fits in a WebSocket
// message once delivered.
func ValidateBody(body json.RawMessage) error {
	if len(TrimJSONSpace(body)) == 0 {
		return invalid("body", "is missing")
	}
	// The size delivered: a queue carries U+FFFE and U+FFFF escaped
	// (QueueText), and the body comes off it so.
	if n := len(body) + nonCharacterGrowth(body); n > MaxMessageBytes {
		if n > len(body) {
			return invalid("body", "is %d bytes with its U+FFFE and U+FFFF characters written as the escapes a queue needs (\\ufffe); API Gateway delivers at most %d bytes (128 KB) per message", n, MaxMessageBytes)
		}
		return invalid("body", "is %d bytes; API Gateway delivers at most %d bytes (128 KB) per message", len(body), MaxMessageBytes)
	}
	if why := CheckJSON(body); why != "" {
		return invalid("body", "%s", why)
	}
	return nil
}

// Marshal encodes the envelope for the queue. The body is compacted
// (insignificant whitespace dropped, as encoding/json does with a
// RawMessage) but otherwise kept byte for byte: no HTML escaping, so that
// subscribers receive the JSON that was published. Only U+FFFE and
// U+FFFF are written as JSON escapes, which SQS needs (QueueText), on
// every backend, so that subscribers receive the same bytes on each.
func (e Envelope) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	b := QueueText(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if len(b) > MaxEnvelopeBytes {
		return nil, invalid("envelope", "is %d bytes; a queue message holds at most %d bytes", len(b), MaxEnvelopeBytes)
	}
	return b, nil
}

// SQS refuses a message body holding U+FFFE or U+FFFF (they are not XML
// characters); valid JSON can hold them raw, in strings only.
var (
	rawFFFE = []byte("\uFFFE")
	rawFFFF = []byte("\uFFFF")
)

// QueueText returns data with U+FFFE and U+FFFF written as JSON escapes
// when data is JSON, so that SQS carries it: the same JSON, three bytes
// longer for each. Any other data is returned as it is.
func QueueText(data []byte) []byte {
	if nonCharacterGrowth(data) == 0 || !json.Valid(data) {
		return data
	}
	data = bytes.ReplaceAll(data, rawFFFE, []byte(`\ufffe`))
	return bytes.ReplaceAll(data, rawFFFF, []byte(`\uffff`))
}

// nonCharacterGrowth is how many bytes QueueText adds to the JSON data.
func nonCharacterGrowth(data []byte) int {
	return 3 * (bytes.Count(data, rawFFFE) + bytes.Count(data, rawFFFF))
}

// NewMessageID returns a random identifier for an envelope.
func NewMessageID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return fmt.Sprintf("m-%x", b[:])
}

// ValidateMessageID checks an envelope ID supplied by a publisher.
func ValidateMessageID(id string) error {
	if len(id) > MaxNameLength {
		return invalid("id", "is %d bytes long; at most %d are allowed", len(id), MaxNameLength)
	}
	// The words of each error leave the ID out, as every --id value is
	// kept out of errors (listen's is a secret).
	//
	// The queue carries JSON text, which has no place for bytes that are
	// not UTF-8: the ID would come off it another one (U+FFFD in their
	// place), and the report be made under that.
	if !utf8.ValidString(id) {
		return invalid("id", "is not valid UTF-8; use letters, digits and punctuation without spaces")
	}
	// What a geek or topic name may not hold (unseen): an ID that looks
	// like another wherever publish --wait, dlq list or a report shows it
	// would be waited for, or redriven, as the wrong one.
	for _, r := range id {
		if why := unseen(r); why != "" {
			return invalid("id", "contains %s; use letters, digits and punctuation without spaces", why)
		}
		if strings.ContainsRune(`"\`, r) {
			return invalid("id", "contains %q; use letters, digits and punctuation without spaces", r)
		}
	}
	return nil
}
