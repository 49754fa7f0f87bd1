package wsclient

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzConnectURL builds connect URLs from any base (the --url a user
// types or pastes), geek, chatter ID and topics: an accepted one is a ws
// or wss URL with a host whose query carries exactly the geek, the ID and
// the topics given; a refused one says so without echoing a chatter ID
// that the base carries (a pasted connect URL holds one).
func FuzzConnectURL(f *testing.F) {
	f.Add("ws://127.0.0.1:4510/", "Friendless", "sc_secret", "updates,news")
	f.Add("wss://abc.execute-api.eu-west-1.amazonaws.com/prod?x=1", "a", "", "")
	f.Add("wss://h/?id=sc_pasted&geek=other", "me", "sc_mine", ".")
	f.Add("http://h/", "a", "b", "c")
	f.Add("ws://", "a", "b", "c")
	f.Fuzz(func(t *testing.T, base, geek, id, topicList string) {
		var topics []string
		if topicList != "" {
			topics = strings.Split(topicList, ",")
		}
		got, err := ConnectURL(base, geek, id, topics)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "bad WebSocket URL") {
				t.Fatalf("%q: refused with %q", base, msg)
			}
			q := strings.IndexAny(base, "?#")
			if i := strings.Index(base[max(q, 0):], "id="); q >= 0 && i >= 0 {
				if secret := base[q+i+len("id="):]; len(secret) >= 8 && strings.Contains(msg, secret) {
					t.Fatalf("%q: the refusal %q echoes the chatter ID in it", base, msg)
				}
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			t.Fatalf("%q: built %q, not a ws URL with a host (%v)", base, got, err)
		}
		q := u.Query()
		for k, want := range map[string]string{"geek": geek, "id": id, "topic": strings.Join(topics, ",")} {
			if want != "" && (q.Get(k) != want || len(q[k]) != 1) {
				t.Fatalf("%q: built %q, whose %s is %q; want %q", base, got, k, q[k], want)
			}
		}
	})
}
