package pubsub

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// envelopeKeyNames are the keys of an envelope as docs/protocol.md writes
// them.
var envelopeKeyNames = []string{"id", "users", "topics", "body", "connections", "attempt", "lastError"}

// snsOf is an SNS notification whose Message is the JSON text envelope.
func snsOf(envelope string, more ...string) string {
	msg, _ := json.Marshal(envelope)
	return `{"Type":"Notification","MessageId":"n-1","TopicArn":"arn:aws:sns:us-east-1:123456789012:jobs","Message":` + string(msg) + strings.Join(more, "") + `}`
}

// eventOf is an EventBridge event whose detail is envelope.
func eventOf(envelope string, more ...string) string {
	return `{"version":"0","id":"e-1","detail-type":"envelope","source":"socks","detail":` + envelope + strings.Join(more, "") + `}`
}

// encoding/json reads a key into a struct field whatever its case (and
// "ſ" for "s", "K" for "k"), the last of several counting; JSON.parse,
// Python's json, a producer's validator or an SNS filter policy read
// "users" and "Users" as two keys. An envelope read one way by them and
// another by socks would smuggle a message past them: a key that differs
// from one socks reads only by case is refused, naming it.
func TestAKeyThatDiffersOnlyByCaseIsRefused(t *testing.T) {
	const refusal = `: keys are case-sensitive`
	type tc struct {
		name, data, want string
	}
	var tests []tc
	for _, key := range envelopeKeyNames {
		for _, other := range []string{strings.ToUpper(key), strings.ToUpper(key[:1]) + key[1:], strings.ReplaceAll(strings.ReplaceAll(key, "s", "ſ"), "k", "\u212a")} {
			if other == key {
				continue
			}
			value := map[string]string{"id": `"m-2"`, "users": `["bob"]`, "topics": `["secrets"]`, "body": `"smuggled"`,
				"connections": `["c-bob"]`, "attempt": `1`, "lastError": `"x"`}[key]
			want := `has key ` + strconv.Quote(other) + `, not "` + key + `"` + refusal
			tests = append(tests,
				tc{"envelope " + other + " in place of " + key, `{"users":["alice"],"topics":["t"],"body":1,` + strconv.Quote(other) + `:` + value + `}`, "envelope " + want},
				tc{"envelope " + other + " after " + key, `{"id":"m-1","users":["alice"],"topics":["t"],"body":1,"connections":["c-alice"],"attempt":1,"lastError":"e",` + strconv.Quote(other) + `:` + value + `}`, "envelope " + want},
				tc{"envelope " + other + " before " + key, `{` + strconv.Quote(other) + `:` + value + `,"id":"m-1","users":["alice"],"topics":["t"],"body":1}`, "envelope " + want},
			)
		}
	}
	smuggled := `{"users":["alice"],"Users":["bob"],"topics":["t"],"body":1}`
	tests = append(tests,
		tc{"the smuggling example", smuggled, `envelope has key "Users", not "users"` + refusal},
		tc{"the smuggling example in an SNS Message", snsOf(smuggled), `SNS notification (MessageId "n-1"): Message is not an envelope: envelope has key "Users", not "users"` + refusal},
		tc{"the smuggling example in an EventBridge detail", eventOf(smuggled), `EventBridge event (source "socks", detail-type "envelope"): detail is not an envelope: envelope has key "Users", not "users"` + refusal},
		tc{"of several, the first in byte order is named", `{"users":["a"],"topics":["t"],"body":1,"Users":["b"],"Body":2,"TOPICS":["u"]}`, `envelope has key "Body", not "body"` + refusal},
		// The keys socks reads of an SNS notification and an EventBridge
		// event, as SNS and EventBridge write them.
		tc{"an SNS message twice", snsOf(`{"topics":["t"],"body":1}`, `,"message":"{\"topics\":[\"secrets\"],\"body\":1}"`), `SNS notification has key "message", not "Message"` + refusal},
		tc{"an SNS MessageId in another case", snsOf(`{"topics":["t"],"body":1}`, `,"MessageID":"m-other"`), `SNS notification has key "MessageID", not "MessageId"` + refusal},
		tc{"an SNS type in another case", snsOf(`{"topics":["t"],"body":1}`, `,"TYPE":"x"`), `SNS notification has key "TYPE", not "Type"` + refusal},
		tc{"an SNS TopicArn in another case", snsOf(`{"topics":["t"],"body":1}`, `,"topicArn":"x"`), `SNS notification has key "topicArn", not "TopicArn"` + refusal},
		tc{"an EventBridge detail twice", eventOf(`{"topics":["t"],"body":1}`, `,"Detail":{"topics":["secrets"],"body":1}`), `EventBridge event has key "Detail", not "detail"` + refusal},
		tc{"an EventBridge id in another case", eventOf(`{"topics":["t"],"body":1}`, `,"ID":"e-2"`), `EventBridge event has key "ID", not "id"` + refusal},
		tc{"an EventBridge source in another case", eventOf(`{"topics":["t"],"body":1}`, `,"Source":"other"`), `EventBridge event has key "Source", not "source"` + refusal},
		tc{"an EventBridge detail-type in another case", eventOf(`{"topics":["t"],"body":1}`, `,"Detail-Type":"other"`), `EventBridge event has key "Detail-Type", not "detail-type"` + refusal},
		tc{"an SNS confirmation's Token in another case", `{"Type":"SubscriptionConfirmation","TopicArn":"arn:aws:sns:us-east-1:210987654321:jobs","Token":"abc","token":"def"}`,
			`SNS subscription confirmation has key "token", not "Token"` + refusal},
		tc{"an SNS confirmation's Token with the Kelvin sign for k", `{"Type":"UnsubscribeConfirmation","TopicArn":"arn:aws:sns:us-east-1:210987654321:jobs","ToKen":"def"}`,
			`SNS unsubscribe confirmation has key "ToKen", not "Token"` + refusal},
		// Read whatever the case, as before, this was an SNS
		// notification; read as written it is an envelope. Neither.
		tc{"an SNS notification only whatever the case", `{"type":"Notification","message":"{\"topics\":[\"secrets\"],\"body\":1}","topics":["t"],"body":1}`,
			`envelope has key "message", not "Message"` + refusal + ` (read whatever its case, it would be an SNS notification)`},
		tc{"an EventBridge event only whatever the case", `{"Detail-Type":"x","Source":"s","Detail":{"topics":["secrets"],"body":1},"topics":["t"],"body":1}`,
			`envelope has key "Detail", not "detail"` + refusal + ` (read whatever its case, it would be an EventBridge event)`},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseMessage([]byte(tt.data), nil)
			if err == nil || !IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseMessage(%s) = %+v, %v; want an InvalidError containing %q", tt.data, env, err, tt.want)
			}
			if Shape([]byte(tt.data)) == ShapeEnvelope && !strings.Contains(tt.want, "read whatever its case") {
				if _, err2 := ParseEnvelope([]byte(tt.data)); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("ParseEnvelope = %v; want ParseMessage's %v", err2, err)
				}
			}
		})
	}
}

// What socks reads as it always did: keys it does not know, whatever
// their case, are ignored (forward compatibility), and of one key written
// twice the last counts, as in JSON.parse and Python's json.
func TestKeysSocksDoesNotReadAreIgnored(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		users      []string
		topics     []string
	}{
		{"an unknown key", `{"topics":["t"],"body":1,"extra":true,"Extra":false}`, nil, []string{"t"}},
		{"a key socks reads of SNS messages, in an envelope that is none", `{"topics":["t"],"body":1,"type":"greeting","message":"hi"}`, nil, []string{"t"}},
		{"an SNS notification's other keys", snsOf(`{"topics":["t"],"body":1}`, `,"Subject":"s","subject":"S","Users":["bob"]`), nil, []string{"t"}},
		{"an envelope key at the top of an EventBridge event", eventOf(`{"topics":["t"],"body":1}`, `,"Users":["bob"],"topics":["x"]`), nil, []string{"t"}},
		{"a dotless i is no i", `{"topics":["t"],"body":1,"topıcs":["x"]}`, nil, []string{"t"}},
		{"a key twice, the last counts", `{"users":["alice"],"topics":["t"],"body":1,"users":["bob"]}`, []string{"bob"}, []string{"t"}},
		{"a key twice, once escaped, the last counts", `{"users":["alice"],"topics":["t"],"body":1,"\u0075sers":["bob"]}`, []string{"bob"}, []string{"t"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseMessage([]byte(tt.data), nil)
			if err != nil || !slices.Equal(env.Users, tt.users) || !slices.Equal(env.Topics, tt.topics) {
				t.Fatalf("ParseMessage = %+v, %v; want users %q topics %q", env, err, tt.users, tt.topics)
			}
		})
	}
}

// The keys socks reads of an envelope are those docs/protocol.md writes.
func TestTheEnvelopeKeysAreTheDocumentedOnes(t *testing.T) {
	if got := envelopeKeys.names; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(envelopeKeyNames))) {
		t.Fatalf("envelope keys %q, documented %q", got, envelopeKeyNames)
	}
}

// FuzzAKeyIsReadAsWrittenOrRefused: encoding/json reads a key into an
// envelope's field when it is the field's key in any case; ParseEnvelope
// then refuses it, unless it is the key exactly.
func FuzzAKeyIsReadAsWrittenOrRefused(f *testing.F) {
	for _, k := range []string{"users", "Users", "uſers", "uſerſ", "usıers", "İd", "ID", "lastError", "LASTERROR", "attempt", "\u212aey"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		q, err := json.Marshal(key)
		if err != nil {
			return
		}
		// A value of each type, so that whichever field takes the key
		// reads it.
		for _, v := range []string{`["u"]`, `"s"`, `1`} {
			var e Envelope
			read := json.Unmarshal([]byte(`{`+string(q)+`:`+v+`}`), &e) != nil || e.ID != "" || e.Users != nil || e.Topics != nil || e.Body != nil || e.Connections != nil || e.Attempt != 0 || e.LastError != ""
			exact := slices.Contains(envelopeKeyNames, key)
			_, perr := ParseEnvelope([]byte(`{"topics":["t"],"body":1,` + string(q) + `:` + v + `}`))
			refused := perr != nil && strings.Contains(perr.Error(), "keys are case-sensitive")
			if read && !exact && !refused {
				t.Fatalf("encoding/json reads %q into an envelope field, and ParseEnvelope does not refuse it (%v)", key, perr)
			}
			if refused && (exact || !read) {
				t.Fatalf("ParseEnvelope refused %q, which encoding/json does not read into a field in another case (%v)", key, perr)
			}
		}
	})
}

// objectKeys are the keys eachKey finds.
func objectKeys(data []byte) []string {
	var keys []string
	eachKey(data, func(key []byte) { keys = append(keys, string(key)) })
	return keys
}

func TestObjectKeysAreTheTopLevelKeys(t *testing.T) {
	for in, want := range map[string][]string{
		`{"a":1,"b":{"c":[{"d":2}]},"e":"f,\"g\":h"}`: {"a", "b", "e"},
		` {"\u0055sers":[],"x\"y":{},"":null} `:       {"Users", `x"y`, ""},
		`{"a":"{","b":"[","c":"}}}","d":["]",","]}`:   {"a", "b", "c", "d"},
		`{}`:            nil,
		`[{"a":1}]`:     nil,
		`"{\"a\":1}"`:   nil,
		`{"a":1,"a":2}`: {"a", "a"},
	} {
		if got := objectKeys([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("objectKeys(%s) = %q, want %q", in, got, want)
		}
	}
}

// FuzzObjectKeysAreTheKeysEncodingJSONReads: the keys objectKeys finds
// without decoding are those encoding/json decodes.
func FuzzObjectKeysAreTheKeysEncodingJSONReads(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":{"c":[{"d":2}]},"e":"f,\"g\":h"}`))
	f.Add([]byte(`{"\u0055sers":[],"x\"y":{},"\ud83d\ude00":null}`))
	f.Add([]byte("{\"a\xff\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var top map[string]json.RawMessage
		if json.Unmarshal(data, &top) != nil || top == nil {
			return
		}
		got := slices.Compact(slices.Sorted(slices.Values(objectKeys(data))))
		if want := slices.Sorted(maps.Keys(top)); !slices.Equal(got, want) {
			t.Fatalf("objectKeys(%q) = %q, encoding/json reads %q", data, got, want)
		}
	})
}
