package pubsub

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMessageTakesEachShapeOffTheQueue(t *testing.T) {
	entity := &Mapping{Topics: []string{"/detail/entityId"}}
	perUser := &Mapping{Topics: []string{"/detail/entityId"}, Users: "/detail/userId", Body: "/detail/key"}
	byType := &Mapping{Topics: []string{"orders", "/detail-type"}}
	tests := []struct {
		name    string
		file    string
		mapping *Mapping
		shape   string
		users   []string
		topics  []string
		body    string
		id      string // a pointer to the ID the envelope takes from the event
		wantErr string
	}{
		{name: "an EventBridge event whose detail is an envelope", file: "eventbridge-envelope.json", shape: ShapeEventBridge,
			users: []string{"Friendless"}, topics: []string{"updates"}, body: `{"stats":"refreshed"}`, id: "/id"},
		{name: "an envelope in an EventBridge detail wins over a mapping", file: "eventbridge-envelope.json", mapping: entity, shape: ShapeEventBridge,
			users: []string{"Friendless"}, topics: []string{"updates"}, body: `{"stats":"refreshed"}`},
		{name: "an SNS notification whose Message is an envelope", file: "sns-envelope.json", shape: ShapeSNS,
			users: []string{"Friendless"}, topics: []string{"jobs"}, body: `{"key":"reports/42.csv"}`, id: "/MessageId"},
		{name: "an SNS raw delivery is a plain envelope", file: "sns-raw-envelope.json", shape: ShapeEnvelope,
			users: []string{"Friendless"}, topics: []string{"jobs"}, body: `{"key":"reports/42.csv"}`},
		{name: "an entity event is mapped to its entity's topic with the whole detail", file: "eventbridge-entity.json", mapping: entity, shape: ShapeEventBridge,
			topics: []string{"myTestEntityId"}, body: `{"entityId":"myTestEntityId","message":"hello from EventBridge"}`, id: "/id"},
		{name: "a fixed topic plus the detail type", file: "eventbridge-entity.json", mapping: byType, shape: ShapeEventBridge,
			topics: []string{"orders", "EntityChanged"}, body: `{"entityId":"myTestEntityId","message":"hello from EventBridge"}`},
		{name: "a per-user event goes to its user with one field as body", file: "eventbridge-user.json", mapping: perUser, shape: ShapeEventBridge,
			users: []string{"Friendless"}, topics: []string{"jobs"}, body: `"reports/42.csv"`},
		{name: "a per-user event without its user is refused, not widened", file: "eventbridge-user-missing.json", mapping: perUser, shape: ShapeEventBridge,
			wantErr: `EventBridge event (source "com.example.jobs", detail-type "Job finished") mapping users nothing at /detail/userId; the event is not delivered to every subscriber instead`},
		{name: "an EventBridge event that is not an envelope, without a mapping, is refused naming its shape", file: "eventbridge-entity.json", shape: ShapeEventBridge,
			wantErr: `EventBridge event (source "com.example.site", detail-type "EntityChanged"): detail is not an envelope: topics is empty`},
		{name: "an SNS notification whose Message is not an envelope is refused naming its shape", file: "sns-not-envelope.json", shape: ShapeSNS,
			wantErr: `): Message is not an envelope: envelope is not valid JSON`},
		{name: "an SNS subscription confirmation is refused with the command that confirms it", file: "sns-subscription-confirmation.json", shape: ShapeSNSSubscribe,
			wantErr: "SNS subscription confirmation (topic arn:aws:sns:us-east-1:210987654321:jobs): SNS delivers nothing from the topic until the queue's owner confirms the subscription: " +
				"run `aws sns confirm-subscription --topic-arn arn:aws:sns:us-east-1:210987654321:jobs --token 2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736` (socks never visits the SubscribeURL)"},
		{name: "an SNS unsubscribe confirmation is refused with the command that restores the subscription", file: "sns-unsubscribe-confirmation.json", shape: ShapeSNSUnsubscribe,
			wantErr: "SNS unsubscribe confirmation (topic arn:aws:sns:us-east-1:210987654321:jobs): the subscription was deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := readEvent(t, tt.file)
			if got := Shape(data); got != tt.shape {
				t.Errorf("Shape = %q, want %q", got, tt.shape)
			}
			env, err := ParseMessage(data, tt.mapping)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !IsInvalid(err) {
					t.Fatalf("err = %v, want an InvalidError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(env.Users, tt.users) || !slices.Equal(env.Topics, tt.topics) || string(env.Body) != tt.body {
				t.Errorf("got users=%q topics=%q body=%s, want users=%q topics=%q body=%s", env.Users, env.Topics, env.Body, tt.users, tt.topics, tt.body)
			}
			if tt.id != "" {
				want, err := Point(data, tt.id)
				if err != nil || `"`+env.ID+`"` != string(want) || env.ID == "" {
					t.Errorf("ID = %q, want the event's %s %s", env.ID, tt.id, want)
				}
			}
		})
	}
}

func TestMappingRefusesWhatWouldWidenOrMislead(t *testing.T) {
	ev := func(detail string) []byte {
		return []byte(`{"version":"0","id":"e-1","detail-type":"T","source":"s","detail":` + detail + `}`)
	}
	m := &Mapping{Topics: []string{"/detail/entityId"}, Users: "/detail/userId"}
	for _, tt := range []struct{ name, detail, want string }{
		{"a null user", `{"entityId":"a","userId":null}`, "nothing at /detail/userId (null)"},
		{"an empty user", `{"entityId":"a","userId":""}`, "/detail/userId is an empty string"},
		{"an empty list of users", `{"entityId":"a","userId":[]}`, "/detail/userId is an empty array"},
		{"a number as user", `{"entityId":"a","userId":7}`, "/detail/userId is a number, not a string"},
		{"a boolean as user", `{"entityId":"a","userId":false}`, "/detail/userId is a boolean, not a string"},
		{"an object as user", `{"entityId":"a","userId":{"name":"u"}}`, "/detail/userId is an object, not a string"},
		{"a list of lists of users", `{"entityId":"a","userId":[["u"]]}`, "/detail/userId is an array, not a string or an array of strings"},
		{"a list of an empty user", `{"entityId":"a","userId":[""]}`, "/detail/userId/0 is an empty string"},
		{"a list of a null user", `{"entityId":"a","userId":[null]}`, "/detail/userId/0 is null"},
		{"a list with a null user after one", `{"entityId":"a","userId":["u",null]}`, "/detail/userId/1 is null"},
		{"a blank user", `{"entityId":"a","userId":" "}`, `geek " " is only whitespace`},
		{"an invisible user", `{"entityId":"a","userId":"a\u200bb"}`, "invisible formatting character U+200B"},
		{"the every-topic name as user", `{"entityId":"a","userId":"."}`, `geek "." is reserved`},
		{"a missing topic", `{"userId":"u"}`, "mapping topics nothing at /detail/entityId"},
		{"a bad topic name", `{"entityId":"a b","userId":"u"}`, "mapped to an invalid envelope"},
		{"a detail that is a string", `"x"`, "nothing at /detail/entityId (/detail is a string)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMessage(ev(tt.detail), m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("a list of users is taken as is", func(t *testing.T) {
		env, err := ParseMessage(ev(`{"entityId":"a","userId":["u1","u2","u1"]}`), m)
		if err != nil || !slices.Equal(env.Users, []string{"u1", "u2"}) {
			t.Fatalf("env=%+v err=%v", env, err)
		}
	})
	t.Run("a broken envelope in a detail is not reinterpreted by the mapping", func(t *testing.T) {
		_, err := ParseMessage(ev(`{"topics":[],"entityId":"a","userId":"u","body":1}`), m)
		if err == nil || !strings.Contains(err.Error(), "detail is not an envelope") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMappingCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    Mapping
		want string
	}{
		{"no topics", Mapping{}, "mapping topics is empty"},
		{"a users path that is not a pointer", Mapping{Topics: []string{"a"}, Users: "detail.userId"}, `mapping users "detail.userId" is not a JSON pointer`},
		{"a body path that is not a pointer", Mapping{Topics: []string{"a"}, Body: "$.detail"}, `mapping body "$.detail" is not a JSON pointer`},
		{"a bad escape", Mapping{Topics: []string{"/detail/a~2"}}, `has a "~" not followed by 0 or 1`},
		{"a literal topic with a space", Mapping{Topics: []string{"a b"}}, "is neither a JSON pointer"},
		{"a good one", Mapping{Topics: []string{"/detail/entityId", "orders"}, Users: "/detail/userId", Body: "/detail"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Check()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPointFollowsRFC6901(t *testing.T) {
	doc := []byte(`{"a/b":{"m~n":[10,{"x":"y"}]},"detail-type":"T"}`)
	for p, want := range map[string]string{
		"/a~1b/m~0n/0":   "10",
		"/a~1b/m~0n/1/x": `"y"`,
		"/detail-type":   `"T"`,
	} {
		got, err := Point(doc, p)
		if err != nil || string(got) != want {
			t.Errorf("Point(%q) = %s, %v; want %s", p, got, err, want)
		}
	}
	for _, p := range []string{"/a~1b/m~0n/2", "/a~1b/m~0n/01", "/nope", "/detail-type/x"} {
		if _, err := Point(doc, p); err == nil {
			t.Errorf("Point(%q) found something", p)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, name := range []string{"eventbridge-envelope.json", "eventbridge-entity.json", "sns-envelope.json", "sns-not-envelope.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "events", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(snsOf(`{"topics":["t"],"body":1}`, `,"message":"{\"topics\":[\"secrets\"],\"body\":1}"`)))
	f.Add([]byte(`{"Type":"Notification","Message":"{\"topics\":[\"t\"],\"body\":1}","type":"x","topics":["secrets"],"body":1}`))
	m := &Mapping{Topics: []string{"/detail/entityId"}, Users: "/detail/userId"}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mp := range []*Mapping{nil, m} {
			env, err := ParseMessage(data, mp)
			if err != nil {
				if !IsInvalid(err) {
					t.Fatalf("ParseMessage returned a non-InvalidError: %v", err)
				}
				continue
			}
			// What is delivered had the shape its keys as written give
			// it, read whatever their case too.
			var folded wrapper
			if json.Unmarshal(data, &folded) == nil && folded.shape() != Shape(data) {
				t.Fatalf("delivered a message that is an %s by its keys as written and an %s whatever their case", Shape(data), folded.shape())
			}
			if err := env.Validate(); err != nil {
				t.Fatalf("parsed envelope does not validate: %v", err)
			}
			if mp != nil && Shape(data) == ShapeEventBridge && len(env.Users) == 0 && !isEnvelopeLike(detailOf(data)) {
				t.Fatalf("a mapping with a users path delivered to every subscriber: %s", data)
			}
		}
	})
}

// detailOf is the detail ParseMessage reads: the key "detail" as written.
func detailOf(data []byte) []byte {
	var w wrapper
	if wrapperKeys.decode(data, &w) != nil {
		return nil
	}
	return w.Detail
}

// A confirmation is never delivered, even one that also looks like an
// envelope, and one whose TopicArn or Token SNS would not write (anyone
// allowed to send to the queue can write it) gives no command to paste.
func TestAnSNSConfirmationIsNeverDelivered(t *testing.T) {
	for _, tt := range []struct{ name, body, want string }{
		{"one that also has topics", `{"Type":"SubscriptionConfirmation","TopicArn":"arn:aws:sns:us-east-1:210987654321:jobs","Token":"abc123","topics":["."],"body":1}`,
			"--topic-arn arn:aws:sns:us-east-1:210987654321:jobs --token abc123`"},
		{"a token with shell in it", `{"Type":"SubscriptionConfirmation","MessageId":"m-1","TopicArn":"arn:aws:sns:us-east-1:210987654321:jobs","Token":"abc; rm -rf ~"}`,
			`SNS subscription confirmation (MessageId "m-1"): not from SNS as far as can be told`},
		{"a topic ARN with shell in it", `{"Type":"UnsubscribeConfirmation","MessageId":"m-2","TopicArn":"arn:aws:sns:us-east-1:210987654321:$(id)","Token":"abc"}`,
			`SNS unsubscribe confirmation (MessageId "m-2"): not from SNS as far as can be told`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseMessage([]byte(tt.body), nil)
			if err == nil || !IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseMessage = %+v, %v; want an InvalidError containing %q", env, err, tt.want)
			}
			if strings.Contains(tt.want, "not from SNS") && strings.Contains(err.Error(), "aws sns") {
				t.Errorf("err = %v; gives a command with what SNS would not write", err)
			}
		})
	}
}

// TestAWrappedBodyIsDeliveredAsEachShapeCarriesIt: "The body of an
// envelope in an EventBridge detail is delivered compact (EventBridge
// re-encodes the detail; the whitespace is not the publisher's); an SNS
// Message is the publisher's own text, delivered as a plain envelope's"
// (docs/protocol.md, "Three shapes on the queue"): byte for byte.
func TestAWrappedBodyIsDeliveredAsEachShapeCarriesIt(t *testing.T) {
	const spaced = `{"a":  1, "b" : [1, 2], "s": "x  y"}`
	quoted, _ := json.Marshal(`{"topics":["t"],"body":` + spaced + `}`)
	for _, tc := range []struct{ shape, message, body string }{
		{ShapeEventBridge, `{"detail-type":"x","source":"s","id":"e","detail":{"topics":["t"],"body":` + spaced + `}}`, `{"a":1,"b":[1,2],"s":"x  y"}`},
		{ShapeSNS, `{"Type":"Notification","MessageId":"m","Message":` + string(quoted) + `}`, spaced},
		{ShapeEnvelope, `{"topics":["t"],"body":` + spaced + `}`, spaced},
	} {
		if got := Shape([]byte(tc.message)); got != tc.shape {
			t.Fatalf("%s: read as %s", tc.message, got)
		}
		env, err := ParseMessage([]byte(tc.message), nil)
		if err != nil || string(env.Body) != tc.body {
			t.Errorf("%s: body %s (%v); want %s", tc.shape, env.Body, err, tc.body)
		}
	}
}
