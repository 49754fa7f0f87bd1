package pubsub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidateNames(t *testing.T) {
	tests := []struct {
		name    string
		geek    string
		wantErr string
	}{
		{"a plain name is fine", "Friendless", ""},
		{"unicode letters are fine", "Zoë", ""},
		{"an empty name is refused", "", "is empty"},
		{"whitespace only is refused", "   ", "only whitespace"},
		{"an inner space is refused", "a b", "whitespace"},
		{"a control character is refused", "al\x01ice", "control character"},
		{"a newline is refused", "alice\n", "control character"},
		{"a comma is refused", "a,b", "comma"},
		{"a hash is refused", "a#b", "'#'"},
		{"invalid UTF-8 is refused", "a\xffb", "UTF-8"},
		{"a right-to-left override is refused", "alice\u202egnp.exe", "invisible formatting character U+202E"},
		{"a zero-width space is refused", "ali\u200bce", "invisible formatting character U+200B"},
		{"129 bytes is too long", strings.Repeat("x", 129), "at most 128"},
		// A long name is not echoed, whatever else is wrong with it.
		{"a long run of whitespace is too long", strings.Repeat(" ", 10000), "is 10000 bytes long"},
		{"a long name of invalid UTF-8 is too long", strings.Repeat("\xff", 10000), "is 10000 bytes long"},
		{"128 bytes is fine", strings.Repeat("x", 128), ""},
		{"the wildcard is not a geek", ".", "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateGeek(tt.geek)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateGeek(%q) = %v, want nil", tt.geek, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateGeek(%q) = %v, want an error containing %q", tt.geek, err, tt.wantErr)
			}
			if !IsInvalid(err) {
				t.Fatalf("ValidateGeek(%q) error is not an *InvalidError", tt.geek)
			}
		})
	}
	if err := ValidateTopic("."); err != nil {
		t.Errorf("the wildcard topic must be valid: %v", err)
	}
}

func TestSplitTopics(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", []string{"."}, false},
		{"updates", []string{"updates"}, false},
		{"updates,news,updates", []string{"updates", "news"}, false},
		{"updates,,news", nil, true},
		{"a b", nil, true},
	}
	for _, tt := range tests {
		got, err := SplitTopics(tt.in)
		if (err != nil) != tt.err {
			t.Fatalf("SplitTopics(%q) error = %v, want error %v", tt.in, err, tt.err)
		}
		if !tt.err && strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Fatalf("SplitTopics(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConnectionMatches(t *testing.T) {
	now := time.Now()
	c := Connection{ID: "c1", Geek: "alice", Topics: []string{"updates"}, ExpiresAt: now.Add(time.Hour)}
	all := Connection{ID: "c2", Geek: "bob", Topics: []string{AllTopics}}
	tests := []struct {
		name   string
		conn   Connection
		users  []string
		topics []string
		want   bool
	}{
		{"a geek's own topic reaches it", c, []string{"alice"}, []string{"updates"}, true},
		{"another geek's message does not", c, []string{"bob"}, []string{"updates"}, false},
		{"another topic does not", c, []string{"alice"}, []string{"news"}, false},
		{"a broadcast on its topic reaches it", c, nil, []string{"updates"}, true},
		{"the wildcard envelope topic reaches every topic", c, nil, []string{AllTopics}, true},
		{"a wildcard subscription follows every topic", all, nil, []string{"news"}, true},
		{"a wildcard subscription still filters by geek", all, []string{"alice"}, []string{"news"}, false},
		{"one of several topics is enough", c, []string{"carol", "alice"}, []string{"news", "updates"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.conn.Matches(tt.users, tt.topics); got != tt.want {
				t.Fatalf("Matches(%v, %v) = %v, want %v", tt.users, tt.topics, got, tt.want)
			}
		})
	}
	if c.Expired(now) || !c.Expired(now.Add(2*time.Hour)) {
		t.Fatal("Expired must flip at ExpiresAt")
	}
}

func TestParseEnvelope(t *testing.T) {
	big := `"` + strings.Repeat("x", MaxMessageBytes) + `"`
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"the legacy shape parses", `{"users":["Friendless"],"topics":["updates"],"body":{"a":1}}`, ""},
		{"users may be absent", `{"topics":["updates"],"body":"hi"}`, ""},
		{"an id is kept", `{"id":"m-1","topics":["."],"body":1}`, ""},
		{"unknown fields are ignored", `{"topics":["t"],"body":1,"extra":true}`, ""},
		{"not JSON", `{nope`, "not valid JSON"},
		{"trailing data", `{"topics":["t"],"body":1} {}`, "trailing"},
		{"no topics", `{"users":["a"],"body":1}`, "topics is empty"},
		{"no body", `{"topics":["t"]}`, "body is missing"},
		{"a bad user name", `{"users":["a b"],"topics":["t"],"body":1}`, "whitespace"},
		{"a body over 128 KB", `{"topics":["t"],"body":` + big + `}`, "128 KB"},
		{"an id with a space", `{"id":"a b","topics":["t"],"body":1}`, "id contains whitespace"},
		{"an empty message", ``, "envelope is empty"},
		{"only whitespace", " \n\t ", "envelope is empty"},
		{"invalid UTF-8", "{\"topics\":[\"t\xff\"],\"body\":1}", "not valid UTF-8"},
		{"a JSON nesting bomb", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), "nests more than 64 levels"},
		{"a nesting bomb in the body", `{"topics":["t"],"body":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`, "nests more than 64 levels"},
		{"topics as a string", `{"topics":"t","body":1}`, `"topics" as a string; it must be a list of strings`},
		{"users as a number", `{"users":7,"topics":["t"],"body":1}`, `"users" as a number; it must be a list of strings`},
		{"a topic that is a number", `{"topics":[1],"body":1}`, `"topics" as a number`},
		{"an array instead of an object", `[1,2]`, "must be a JSON object, not an array"},
		{"a bare string", `"hi"`, "must be a JSON object, not a string"},
		{"a truncated envelope", `{"topics":["t"],"body":`, "not valid JSON"},
		{"a control character in a topic", `{"topics":["a\u0001b"],"body":1}`, "control character"},
		{"thousands of topics", `{"topics":[` + manyTopics(5000) + `],"body":1}`, "at most 50"},
		{"a thousand users on 50 topics costs too many lookups", `{"users":[` + manyTopics(1000) + `],"topics":[` + manyTopics(50) + `],"body":1}`, "lookups"},
		{"a thousand users on one topic is allowed", `{"users":[` + manyTopics(1000) + `],"topics":["t"],"body":1}`, ""},
		{"duplicate topics count once", `{"topics":["t","t","t"],"body":1}`, ""},
		{"an empty topic", `{"topics":[""],"body":1}`, "topic is empty"},
		{"a body that is not JSON cannot be written", `{"topics":["t"],"body":nope}`, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseEnvelope: %v", err)
				}
				if _, err := env.Marshal(); err != nil {
					t.Fatalf("Marshal: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseEnvelope error = %v, want it to contain %q", err, tt.wantErr)
			}
			if !IsInvalid(err) {
				t.Errorf("ParseEnvelope error %v is not an *InvalidError", err)
			}
			for _, leak := range []string{"json:", "Go struct", "Go value", "pubsub."} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("ParseEnvelope error %q shows Go internals (%q)", err, leak)
				}
			}
		})
	}
}

// manyTopics returns n distinct quoted names, comma-separated.
func manyTopics(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf(`"n%d"`, i)
	}
	return strings.Join(names, ",")
}

func TestEnvelopeRoundTripKeepsBodyBytes(t *testing.T) {
	body := json.RawMessage(`{"nested":{"list":[1,2,3]},"s":"é"}`)
	env := Envelope{ID: NewMessageID(), Users: []string{"alice"}, Topics: []string{"updates"}, Body: body}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(body) || got.ID != env.ID {
		t.Fatalf("round trip changed the envelope: %+v", got)
	}
}

func TestChatterIDs(t *testing.T) {
	a, b := NewChatterID(), NewChatterID()
	if a == b {
		t.Fatal("two chatter IDs are equal")
	}
	if !LooksLikeChatterID(a) {
		t.Fatalf("%q does not look like a chatter ID", a)
	}
	// 3-byte prefix + base64 of 24 bytes (32 chars): at least 128 bits.
	if len(a) != len("sc_")+32 || strings.ContainsAny(a, "+/=") {
		t.Fatalf("chatter ID %q is not 32 URL-safe characters after the prefix", a)
	}
	h := HashChatterID(a)
	if len(h) != 64 || h == a || HashChatterID(a) != h {
		t.Fatalf("hash %q is not a stable hex SHA-256", h)
	}
	if Fingerprint(h) != h[:12] {
		t.Fatal("the fingerprint is the first 12 hex digits")
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"users":["Friendless"],"topics":["updates"],"body":{"a":1}}`))
	f.Add([]byte(`{"topics":["."],"body":"x","id":"m-1"}`))
	f.Add([]byte(`{"topics":[""],"body":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"users":["alice"],"Users":["bob"],"topics":["t"],"body":1}`))
	f.Add([]byte(`{"topicſ":["secrets"],"topics":["t"],"body":1,"connections":["c"],"attempt":1,"lastError":"x","LastError":"y"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("ParseEnvelope returned a non-InvalidError: %v", err)
			}
			return
		}
		// What parses reads as to a reader of the keys as written
		// (JSON.parse, Python's json): the documented keys exactly, the
		// last of one written twice.
		if as := asWritten(t, data); as.ID != env.ID || !slices.Equal(as.Users, env.Users) || !slices.Equal(as.Topics, env.Topics) ||
			string(compact(as.Body)) != string(compact(env.Body)) || !slices.Equal(as.Connections, env.Connections) || as.Attempt != env.Attempt || as.LastError != env.LastError {
			t.Fatalf("read as %+v; a reader of the keys as written reads %+v", env, as)
		}
		// Whatever parses must validate, re-encode and parse again the same.
		if err := env.Validate(); err != nil {
			t.Fatalf("parsed envelope does not validate: %v", err)
		}
		b, err := env.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := ParseEnvelope(b)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		// The body comes back byte for byte, but for the U+FFFE and U+FFFF
		// Marshal writes as escapes for SQS (QueueText).
		if string(again.Body) != string(QueueText(env.Body)) || again.ID != env.ID || !slices.Equal(again.Topics, env.Topics) || !slices.Equal(again.Users, env.Users) {
			t.Fatalf("round trip changed the envelope")
		}
		if len(again.Body) > MaxMessageBytes {
			t.Fatalf("a body of %d bytes came back from the queue %d bytes, over the limit", len(env.Body), len(again.Body))
		}
	})
}

// asWritten reads the envelope data as a reader of the keys as written
// does: only the documented keys, exactly.
func asWritten(t *testing.T, data []byte) Envelope {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("an envelope that parsed is no JSON object: %v", err)
	}
	exact := map[string]json.RawMessage{}
	for _, k := range envelopeKeyNames {
		if v, ok := top[k]; ok {
			exact[k] = v
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(exact); err != nil {
		t.Fatal(err)
	}
	var env Envelope
	if err := json.Unmarshal(b.Bytes(), &env); err != nil {
		t.Fatalf("the keys as written do not decode: %v", err)
	}
	return env
}

// FuzzAnEnvelopeAPublisherBuildsComesOffTheQueueAsSent: what a publisher
// builds (socks publish, the library) and Validate accepts is what the
// broker reads off the queue, the ID, users and topics the same and the
// body the same JSON within the limit: the broker reports under the ID
// --wait waits for, and delivers what was published.
func FuzzAnEnvelopeAPublisherBuildsComesOffTheQueueAsSent(f *testing.F) {
	f.Add("m-1", "Friendless", "updates", []byte(`{"a":1}`))
	f.Add("a\xffb", "al\u00e9", ".", []byte(`"\ufffe"`))
	f.Add("", "x", "t", []byte("\"\uFFFF\""))
	f.Fuzz(func(t *testing.T, id, user, topic string, body []byte) {
		env := Envelope{ID: id, Topics: []string{topic}, Body: body}
		if user != "" {
			env.Users = []string{user}
		}
		if env.Validate() != nil {
			return
		}
		data, err := env.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a valid envelope: %v", err)
		}
		again, err := ParseEnvelope(data)
		if err != nil {
			t.Fatalf("a valid envelope comes off the queue refused: %v", err)
		}
		if again.ID != env.ID || !slices.Equal(again.Users, env.Users) || !slices.Equal(again.Topics, env.Topics) {
			t.Fatalf("came off the queue as id %q users %q topics %q; sent %q %q %q", again.ID, again.Users, again.Topics, env.ID, env.Users, env.Topics)
		}
		var a, b any
		if json.Unmarshal(again.Body, &a) != nil || json.Unmarshal(body, &b) != nil || !reflect.DeepEqual(a, b) || len(again.Body) > MaxMessageBytes {
			t.Fatalf("the body came off the queue as other JSON, or over the limit (%d bytes)", len(again.Body))
		}
	})
}

func FuzzSplitTopics(f *testing.F) {
	f.Add("updates,news")
	f.Add("")
	f.Add(".,a,,b")
	f.Fuzz(func(t *testing.T, s string) {
		topics, err := SplitTopics(s)
		if err != nil {
			return
		}
		if len(topics) == 0 {
			t.Fatal("no error and no topics")
		}
		for _, tp := range topics {
			if err := ValidateTopic(tp); err != nil {
				t.Fatalf("SplitTopics returned an invalid topic %q: %v", tp, err)
			}
		}
	})
}

func TestUniqueKeepsTheFirstOfEachInOrder(t *testing.T) {
	got := Unique([]string{"b", "a", "b", "c", "a"})
	if strings.Join(got, ",") != "b,a,c" {
		t.Fatalf("Unique = %v, want [b a c]", got)
	}
	if got := Unique(nil); got != nil {
		t.Fatalf("Unique(nil) = %v, want nil", got)
	}
}

func TestRedrivenStartsAFollowUpsAttemptsAgainAndLeavesOtherBodiesAlone(t *testing.T) {
	fu := Envelope{ID: "m-1", Topics: []string{"updates"}, Body: json.RawMessage(`{"n":1}`),
		FollowUp: FollowUp{Connections: []string{"c1", "c2"}, Attempt: 6, LastError: "HTTP 500"}}
	data, err := fu.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelope(Redriven(data))
	if err != nil {
		t.Fatal(err)
	}
	want := fu
	want.Attempt = 0
	if got.ID != want.ID || !slices.Equal(got.Connections, want.Connections) || got.Attempt != 0 ||
		got.LastError != want.LastError || string(got.Body) != string(want.Body) || !slices.Equal(got.Topics, want.Topics) {
		t.Errorf("Redriven(follow-up) = %+v; want %+v", got, want)
	}
	if again := Redriven(Redriven(data)); string(again) != string(Redriven(data)) {
		t.Errorf("Redriven twice = %s; want %s", again, Redriven(data))
	}
	for _, body := range []string{
		`{"id":"m-2","topics":["updates"],"body":{"a":[1, 2]}}`,
		`{"topics":["updates"],"body":1,"connections":["c1"]}`,
		`not an envelope`,
		`{"version":"0","detail-type":"x","source":"y","detail":{"topics":["a"],"body":1,"connections":["c"],"attempt":3}}`,
	} {
		if got := Redriven([]byte(body)); string(got) != body {
			t.Errorf("Redriven(%s) = %s; want it unchanged", body, got)
		}
	}
}

// TestAnEnvelopeThatValidatesComesOffTheQueueAsSent: an ID that was not
// valid UTF-8 passed Validate, and Marshal wrote it with U+FFFD in place
// of the bad bytes, so the broker reported on another ID than the one
// `publish --id ... --wait` waited for (a timeout on the local backend).
func TestAnEnvelopeThatValidatesComesOffTheQueueAsSent(t *testing.T) {
	for _, id := range []string{"m-1", "job-é", "a\xffb", "\xc3", "m-\xed\xa0\x80"} {
		env := Envelope{ID: id, Topics: []string{"t"}, Body: json.RawMessage(`1`)}
		if err := env.Validate(); err != nil {
			if !strings.Contains(err.Error(), "UTF-8") {
				t.Errorf("id %q refused with %q; want it to say it is not valid UTF-8", id, err)
			}
			continue
		}
		data, err := env.Marshal()
		if err != nil {
			t.Fatalf("id %q: Marshal: %v", id, err)
		}
		back, err := ParseEnvelope(data)
		if err != nil || back.ID != id {
			t.Errorf("id %q validates, but comes off the queue as %q (%v)", id, back.ID, err)
		}
	}
}

// TestABodyWithSpaceJSONDoesNotAllowIsRefused: CheckJSON trimmed Unicode
// whitespace (a vertical tab, a form feed, U+00A0) off a body's ends, so
// Validate accepted `0\v`, and Marshal then failed with encoding/json's
// own error. Only JSON's whitespace may surround a value.
func TestABodyWithSpaceJSONDoesNotAllowIsRefused(t *testing.T) {
	for _, body := range []string{"0\v", "\f{}", "\u00a0\"x\"", "[]\u0085"} {
		err := Envelope{Topics: []string{"t"}, Body: json.RawMessage(body)}.Validate()
		if err == nil || !IsInvalid(err) || !strings.Contains(err.Error(), "body") {
			t.Errorf("body %q: Validate = %v; want it refused", body, err)
		}
	}
	for _, body := range []string{" 0 ", "\t{}\r\n"} {
		env := Envelope{Topics: []string{"t"}, Body: json.RawMessage(body)}
		if err := env.Validate(); err != nil {
			t.Errorf("body %q: %v; want JSON's own whitespace allowed", body, err)
		} else if _, err := env.Marshal(); err != nil {
			t.Errorf("body %q: Marshal: %v", body, err)
		}
	}
}

// TestTheUsersLimitCountsDistinctUsers: the limit is on the users an
// envelope addresses, as publish --geek counts them (duplicates removed
// first): an envelope from another producer naming a user twice was
// refused at the limit though it addresses fewer users; one addressing
// more is still refused.
func TestTheUsersLimitCountsDistinctUsers(t *testing.T) {
	users := func(n int) []string {
		u := make([]string, n)
		for i := range u {
			u[i] = fmt.Sprintf("u%d", i)
		}
		return u
	}
	envelope := func(users []string) []byte {
		b, err := json.Marshal(map[string]any{"users": users, "topics": []string{"t"}, "body": 1})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	atLimit := users(MaxUsersPerEnvelope)
	if _, err := ParseEnvelope(envelope(append(atLimit, atLimit[0]))); err != nil {
		t.Errorf("%d users, one named twice: %v; want it accepted", MaxUsersPerEnvelope, err)
	}
	if _, err := ParseEnvelope(envelope(users(MaxUsersPerEnvelope + 1))); err == nil {
		t.Errorf("%d distinct users accepted", MaxUsersPerEnvelope+1)
	}
}

// TestTheCountLimitsReadAsSentences: the refusal of too many topics read
// "topics names 60 distinct topics"; each count limit's refusal reads as
// a sentence, in every place it reaches (publish --topic, ?topic=, a
// subscribe frame, an envelope's dead-letter reason, chatter issue
// --topics).
func TestTheCountLimitsReadAsSentences(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("t%d", i)
		}
		return out
	}
	_, normalized := NormalizeTopics(many(60))
	_, listed := TopicList([]string{strings.Join(many(60), ",")})
	body, err := json.Marshal(map[string]any{"users": many(MaxUsersPerEnvelope + 1), "topics": []string{"t"}, "body": 1})
	if err != nil {
		t.Fatal(err)
	}
	_, users := ParseEnvelope(body)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"an envelope's topics", ValidateTopics(many(60)), "the topic list names 60 distinct topics; at most 50 are allowed"},
		{"a connection's topics", normalized, "the topic list names 60 distinct topics; at most 50 are allowed"},
		{"a comma list", listed, "the topic list names 60 distinct topics; at most 50 are allowed"},
		{"a chatter ID's patterns", ValidateTopicPatterns(many(60)), "the topic list names 60 distinct patterns; at most 50 are allowed"},
		{"an envelope's users", users, "the user list names 1001 distinct users; at most 1000 are allowed"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: %v; want %q", tc.name, tc.err, tc.want)
		}
	}
}

// TestAStarInAPatternSaysWhatItMeansThere: '*' is an ordinary character
// of a topic's name everywhere (listen --topic '*', publish --topic
// 'a*b'), but in the topic patterns of a chatter ID it is the wildcard
// that ends a prefix ("entity:*"). The refusals said "*" allows
// everything (it would allow every topic but '.') and that '*' may only
// end a pattern, without saying why a valid topic name is refused: they
// say what '*' means in a pattern, what "*" would allow, and how to allow
// a topic whose name holds one.
func TestAStarInAPatternSaysWhatItMeansThere(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"*", []string{`"*" would allow every topic but '.'`, "in a pattern '*' matches any ending", "leave the topics out to allow any topic"}},
		{"a*b", []string{`"a*b" has '*' before its end`, "in a pattern '*' matches any ending", `"a*" allows it`}},
		{"job:*:done*", []string{`"job:*" allows it`}},
	} {
		if ValidateTopic(tc.pattern) != nil {
			t.Fatalf("%q is not a valid topic name", tc.pattern)
		}
		err := ValidateTopicPatterns([]string{tc.pattern})
		if !IsInvalid(err) {
			t.Fatalf("pattern %q: %v; want it refused", tc.pattern, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("pattern %q: %q; want it to say %q", tc.pattern, err, w)
			}
		}
		if strings.Contains(err.Error(), "allows everything") {
			t.Errorf("pattern %q: %q says it allows everything; it would not allow '.'", tc.pattern, err)
		}
	}
	// A pattern too long is refused for its length before its '*' is
	// quoted: the refusal does not echo it.
	long := strings.Repeat("x", 5000) + "*y"
	if err := ValidateTopicPatterns([]string{long}); err == nil || len(err.Error()) > 200 {
		t.Errorf("a pattern of %d bytes: %d bytes of refusal; want it refused for its length", len(long), len(err.Error()))
	}
}

// TestTheTopicLimitsCountDistinctTopics: ValidateTopics (an envelope's
// topics) and ValidateTopicPatterns (a chatter ID's) counted entries, so
// an envelope from another producer naming one topic 51 times, or
// `chatter issue --topics a,a,...`, was refused at the limit of 50 though
// it names one; the stores look each topic up once. More distinct topics
// than the limit are still refused, and the error counts them.
func TestTheTopicLimitsCountDistinctTopics(t *testing.T) {
	topics := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("t%d", i)
		}
		return out
	}
	atLimit := topics(MaxTopicsPerConnection)
	repeated := append(slices.Clone(atLimit), atLimit...)
	over := topics(MaxTopicsPerConnection + 1)
	for _, tc := range []struct {
		name     string
		validate func([]string) error
	}{
		{"an envelope's topics", ValidateTopics},
		{"a chatter ID's topic patterns", ValidateTopicPatterns},
	} {
		t.Run(tc.name+": the limit named twice each is accepted", func(t *testing.T) {
			if err := tc.validate(repeated); err != nil {
				t.Errorf("%d topics, each twice: %v; want them accepted", MaxTopicsPerConnection, err)
			}
		})
		t.Run(tc.name+": one topic over and over is accepted", func(t *testing.T) {
			if err := tc.validate(slices.Repeat([]string{"a"}, 3*MaxTopicsPerConnection)); err != nil {
				t.Errorf("one topic %d times: %v; want it accepted", 3*MaxTopicsPerConnection, err)
			}
		})
		t.Run(tc.name+": one distinct topic over the limit is refused", func(t *testing.T) {
			err := tc.validate(append(over, over...))
			if !IsInvalid(err) || !strings.Contains(err.Error(), fmt.Sprint(MaxTopicsPerConnection+1)) {
				t.Errorf("%d distinct topics, each twice: %v; want them refused, counted once each", len(over), err)
			}
		})
	}
}

// TestAMessageIDFollowsTheNamesRuleForCharacters: ValidateMessageID
// refused only ASCII controls and spaces, so an ID could hold U+00A0, a C1
// control, a line separator or an invisible formatting character (a
// zero-width space, a bidi override), and look like another ID wherever
// publish --wait, dlq list or a report printed it. It refuses what a geek
// or topic name refuses, with the same words.
func TestAMessageIDFollowsTheNamesRuleForCharacters(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"job\u00a07", "contains whitespace"},
		{"job\u20287", "contains whitespace"},
		{"job 7", "contains whitespace"},
		{"job\u00857", "control character U+0085"},
		{"job\x1b[2J", "control character U+001B"},
		{"job\u200b7", "invisible formatting character U+200B"},
		{"\u202ejob7", "invisible formatting character U+202E"},
		{"job7\ufeff", "invisible formatting character U+FEFF"},
		{`job"7`, `contains '"'`},
	} {
		err := ValidateMessageID(tc.id)
		if !IsInvalid(err) || !strings.HasPrefix(err.Error(), "id ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateMessageID(%q) = %v; want an *InvalidError saying it %s", tc.id, err, tc.want)
		}
	}
	// The words leave the ID out, whatever is wrong with it: it quoted
	// one that is not UTF-8.
	for _, id := range []string{"job-secret\xff7", "job-secret 7", "job-secret\u200b7", `job-secret"7`, strings.Repeat("job-secret", 13)} {
		if err := ValidateMessageID(id); err == nil || strings.Contains(err.Error(), "job-secret") {
			t.Errorf("ValidateMessageID(%q) = %v; want an error that leaves the ID out", id, err)
		}
	}
	for _, id := range []string{"m-0123abcd", "job:7#retry,2", "café-7", "🎲"} {
		if err := ValidateMessageID(id); err != nil {
			t.Errorf("ValidateMessageID(%q) = %v; want it accepted", id, err)
		}
	}
}
