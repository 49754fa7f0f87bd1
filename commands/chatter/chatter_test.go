package chatter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// listed is a Store whose ListChatterIDs returns ids.
type listed struct {
	store.Store
	ids []store.ChatterID
}

func (l listed) ListChatterIDs(context.Context, string) ([]store.ChatterID, error) { return l.ids, nil }

// TestListShowsARefusedIDWithTheReason: a chatter ID whose record a
// backend wrote so that $connect cannot honour it (its allowed topics a
// string set) was listed "valid", and its topics as if they limited it,
// while every connect with it was refused 403 for no reason anyone could
// see. The listing says "refused", and why: in JSON a refused field, in
// the table its state, with the reason in a note on stderr.
func TestListShowsARefusedIDWithTheReason(t *testing.T) {
	now := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)
	const reason = "its allowed topics are not a list of strings (write allowed as a non-empty L of S)"
	ids := []store.ChatterID{
		{Geek: "alice", Hash: pubsub.HashChatterID("sc_good"), IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)},
		{Geek: "alice", Hash: pubsub.HashChatterID("sc_set"), IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), Topics: []string{"updates"}, Refused: reason},
		{Geek: "alice", Hash: pubsub.HashChatterID("sc_old"), IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
	}
	refusedFP := ids[1].Fingerprint()

	t.Run("json", func(t *testing.T) {
		ios, _, out, errOut := iostreams.Test()
		o := &ListOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return listed{ids: ids}, nil }, Now: func() time.Time { return now }, JSON: true}
		if err := listRun(t.Context(), o); err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got) != 3 {
			t.Fatalf("--json printed %q (%v); want 3 IDs", out.String(), err)
		}
		for _, g := range got {
			r, has := g["refused"]
			if g["fingerprint"] == refusedFP {
				if r != reason || g["expired"] != false {
					t.Errorf("the refused ID is listed as %v; want refused %q and not expired", g, reason)
				}
			} else if has {
				t.Errorf("ID %v has a refused field", g)
			}
		}
		if errOut.Len() != 0 {
			t.Errorf("--json wrote %q on stderr", errOut.String())
		}
	})
	t.Run("table", func(t *testing.T) {
		ios, _, out, errOut := iostreams.Test()
		o := &ListOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return listed{ids: ids}, nil }, Now: func() time.Time { return now }}
		if err := listRun(t.Context(), o); err != nil {
			t.Fatal(err)
		}
		states := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:] {
			f := strings.Split(l, "\t")
			states[f[1]] = f[len(f)-1]
		}
		want := map[string]string{ids[0].Fingerprint(): "valid", refusedFP: "refused", ids[2].Fingerprint(): "expired"}
		for fp, st := range want {
			if states[fp] != st {
				t.Errorf("ID %s is listed %q; want %q (the table: %q)", fp, states[fp], st, out.String())
			}
		}
		if note := errOut.String(); !strings.Contains(note, "chatter ID "+refusedFP+" of alice is refused at $connect: "+reason) || strings.Count(note, "\n") != 1 {
			t.Errorf("stderr %q; want one note naming the refused ID and why", note)
		}
	})
}

// TestListTableShowsTheTopicsAnIDIsLimitedTo: `chatter issue --topics`
// limits what an ID may follow, and --json listed that, but the table did
// not: an ID limited to "updates" looked like one that may follow any
// topic, and a page refused a subscribe had nothing to check it against.
// The table has a TOPICS column ("any" for no limit), before STATE, which
// stays last.
func TestListTableShowsTheTopicsAnIDIsLimitedTo(t *testing.T) {
	now := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)
	ids := []store.ChatterID{
		{Geek: "alice", Hash: pubsub.HashChatterID("sc_any"), IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)},
		{Geek: "alice", Hash: pubsub.HashChatterID("sc_some"), IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), Topics: []string{"updates", "entity:*"}},
	}
	ios, _, out, _ := iostreams.Test()
	o := &ListOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return listed{ids: ids}, nil }, Now: func() time.Time { return now }}
	if err := listRun(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != "GEEK\tFINGERPRINT\tISSUED\tEXPIRES\tTOPICS\tSTATE" {
		t.Fatalf("header %q", lines[0])
	}
	topics := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		topics[f[1]] = f[4]
	}
	want := map[string]string{ids[0].Fingerprint(): "any", ids[1].Fingerprint(): "updates,entity:*"}
	for fp, tp := range want {
		if topics[fp] != tp {
			t.Errorf("ID %s lists topics %q; want %q (the table: %q)", fp, topics[fp], tp, out.String())
		}
	}
}

// TestIssueOnATerminalSaysWhenTheIDExpiresWithItsZone: the note said
// "expires 2026-12-01 23:47:19", local time with no zone, where the tables
// say "in 24h00m". It says both: how long from now, as the tables, and
// the time with its zone. --json is unchanged (UTC, RFC 3339).
func TestIssueOnATerminalSaysWhenTheIDExpiresWithItsZone(t *testing.T) {
	zone := time.Local
	time.Local = time.FixedZone("XST", 2*60*60)
	t.Cleanup(func() { time.Local = zone })
	now := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	issue := func(json bool) (stdout, stderr string) {
		ios, _, out, errOut := iostreams.Test()
		ios.SetTTY(false, false, true)
		o := &IssueOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return db.Store(), nil }, Now: func() time.Time { return now },
			Geek: "alice", TTL: 2 * time.Hour, MaxLive: store.DefaultMaxLiveChatterIDs, JSON: json}
		if err := issueRun(t.Context(), o); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	_, note := issue(false)
	if want := "expires in 2h00m (2030-06-01 16:00:00 XST)"; !strings.Contains(note, want) {
		t.Errorf("the note on a terminal is %q; want it to say %q", note, want)
	}
	out, _ := issue(true)
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["expiresAt"] != "2030-06-01T14:00:00Z" {
		t.Errorf("--json printed %q (%v); want expiresAt 2030-06-01T14:00:00Z", out, err)
	}
}

// clocked is a Store whose records carry another clock's times (on AWS,
// the Lambda checks expiries by AWS's): store.Clock.
type clocked struct {
	store.Store
	now time.Time
}

func (c clocked) Now(context.Context) (time.Time, error) { return c.now, nil }

// TestAnIDIssuedFromAMachineWhoseClockIsOffLivesItsTTLByTheStoresClock:
// the gateway judges a chatter ID's expiry by its clock (a Lambda's, on
// AWS). Issued from a laptop whose clock was set behind by more than
// --ttl, the ID was refused as expired at its first connect; ahead, it
// lived longer than asked. Its times are the store's clock's.
func TestAnIDIssuedFromAMachineWhoseClockIsOffLivesItsTTLByTheStoresClock(t *testing.T) {
	aws := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := clocked{db.Store(), aws}
	for _, skew := range []time.Duration{-3 * time.Hour, 3 * time.Hour} {
		ios, _, out, _ := iostreams.Test()
		o := &IssueOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return s, nil },
			Now:  func() time.Time { return aws.Add(skew) },
			Geek: "alice", TTL: time.Hour, MaxLive: store.DefaultMaxLiveChatterIDs, JSON: true}
		if err := issueRun(t.Context(), o); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(out.Bytes(), &got); err != nil || got["expiresAt"] != "2030-06-01T13:00:00Z" {
			t.Errorf("this machine %v off: --json printed %q (%v); want expiresAt 2030-06-01T13:00:00Z, an hour by the store's clock", skew, out, err)
		}
	}
}

// TestListJudgesExpiryByTheStoresClock: listed from a laptop whose clock
// is hours ahead of the store's, a valid ID read "expired" (and behind,
// an expired one "valid"), though the gateway judges by the store's.
func TestListJudgesExpiryByTheStoresClock(t *testing.T) {
	aws := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)
	ids := []store.ChatterID{
		{Geek: "alice", Hash: pubsub.HashChatterID("sc_good"), IssuedAt: aws.Add(-time.Hour), ExpiresAt: aws.Add(time.Hour)},
		{Geek: "alice", Hash: pubsub.HashChatterID("sc_old"), IssuedAt: aws.Add(-2 * time.Hour), ExpiresAt: aws.Add(-time.Hour)},
	}
	for _, skew := range []time.Duration{-3 * time.Hour, 3 * time.Hour} {
		ios, _, out, _ := iostreams.Test()
		s := clocked{listed{ids: ids}, aws}
		o := &ListOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return s, nil }, Now: func() time.Time { return aws.Add(skew) }, JSON: true}
		if err := listRun(t.Context(), o); err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got) != 2 {
			t.Fatalf("--json printed %q (%v); want 2 IDs", out.String(), err)
		}
		if got[0]["expired"] != false || got[1]["expired"] != true {
			t.Errorf("this machine %v off: listed %v; want the first valid, the second expired", skew, got)
		}
	}
}

// An issue over --max-live said "geek alice already holds 1 live chatter
// IDs, the most allowed: revoke some ... or let them expire: limit
// reached": the store's sentinel on the end, and no word of --max-live,
// which set the bound and raises it. Its advice, "revoke some (socks
// chatter revoke --geek alice)", was a usage error when run as given.
func TestAnIssueOverMaxLiveSaysSo(t *testing.T) {
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := range 2 {
		ios, _, _, _ := iostreams.Test()
		o := &IssueOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return db.Store(), nil },
			Now: time.Now, Geek: "alice", TTL: time.Hour, MaxLive: 1}
		err := issueRun(t.Context(), o)
		if i == 0 {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		// The revoke it names runs as given: `chatter revoke --geek alice`
		// alone is a usage error (it needs --id, --id-file or --all).
		want := "geek alice already holds 1 live chatter ID, the most --max-live allows (1): revoke some (`socks chatter list --geek alice` shows their fingerprints; `socks chatter revoke --geek alice --id FINGERPRINT`, or `--all`), let them expire, or pass a higher --max-live"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v; want %q", err, want)
		}
	}
}

// jsonKeys returns the keys of the JSON object data (the first of an
// array) in the order they are written.
func jsonKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if tok == json.Delim('[') {
		tok, err = dec.Token()
	}
	if err != nil || tok != json.Delim('{') {
		t.Fatalf("%q is not an object or a list of them: %v", data, err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestIssueJSONKeysComeInChatterListsOrder: `chatter issue --json` wrote
// its keys alphabetically (a map), `chatter list --json` in its fields'
// order; both now read in the same order, the secret after the geek.
func TestIssueJSONKeysComeInChatterListsOrder(t *testing.T) {
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	open := func(context.Context) (store.Store, error) { return db.Store(), nil }
	ios, _, out, _ := iostreams.Test()
	if err := issueRun(t.Context(), &IssueOptions{IO: ios, Store: open, Now: time.Now, Geek: "alice", TTL: time.Hour,
		MaxLive: store.DefaultMaxLiveChatterIDs, Topics: []string{"updates"}, JSON: true}); err != nil {
		t.Fatal(err)
	}
	issued := jsonKeys(t, out.Bytes())
	ios, _, out, _ = iostreams.Test()
	if err := listRun(t.Context(), &ListOptions{IO: ios, Store: open, Now: time.Now, JSON: true}); err != nil {
		t.Fatal(err)
	}
	listed := slices.DeleteFunc(jsonKeys(t, out.Bytes()), func(k string) bool { return k == "expired" })
	want := slices.Insert(slices.Clone(listed), 1, "id")
	if !slices.Equal(issued, want) {
		t.Errorf("chatter issue --json keys %q; want %q, chatter list's order (%q) with the secret after the geek", issued, want, listed)
	}
}

// TestAnIssueFarOverMaxLiveSaysMoreThan: a geek that holds more live IDs
// than a lower --max-live allows (issued under a higher one) was told it
// held "the most --max-live allows".
func TestAnIssueFarOverMaxLiveSaysMoreThan(t *testing.T) {
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	issue := func(maxLive int) error {
		ios, _, _, _ := iostreams.Test()
		return issueRun(t.Context(), &IssueOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return db.Store(), nil },
			Now: time.Now, Geek: "alice", TTL: time.Hour, MaxLive: maxLive})
	}
	for range 2 {
		if err := issue(2); err != nil {
			t.Fatal(err)
		}
	}
	err = issue(1)
	want := "geek alice already holds 2 live chatter IDs, more than --max-live allows (1): revoke some"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v; want it to start %q", err, want)
	}
}

// TestRevokeRefusesAChatterIDOutsideItsAlphabet: `chatter revoke --id`
// took any value starting sc_ as a secret (a paste with a space, an
// escape sequence, a non-ASCII letter), hashed it, matched nothing and
// exited 3, "not found", where listen refuses such an ID as malformed.
// It is a usage error (exit 2), from --id or --id-file, that never
// echoes the value (it may be a mistyped secret), and the store is not
// opened. The refusal names the character and where it is: a no-break
// space or a next line (U+0085) at an end, which strings.TrimSpace took
// off (the ID was then taken), is refused too, as publish refuses it, and
// so is a fingerprint with one.
func TestRevokeRefusesAChatterIDOutsideItsAlphabet(t *testing.T) {
	const secret = "Zq8secretPart"
	for _, tc := range []struct{ name, id, want string }{
		{"a space", "sc_" + secret + " x", "U+0020 (a space) inside it"},
		{"an escape sequence", "sc_" + secret + "\x1b[2J", "U+001B (a control character) inside it"},
		{"a letter beyond ASCII", "sc_" + secret + "é", "U+00E9 (a character beyond ASCII) at its end"},
		{"a zero-width space", "sc_" + secret + "\u200b", "U+200B (an invisible formatting character) at its end"},
		{"invalid UTF-8", "sc_" + secret + "\xff", "the byte 0xFF, which is not UTF-8, at its end"},
		{"a no-break space at its end", "sc_" + secret + "\u00a0", "U+00A0 (a no-break space) at its end"},
		{"a next line at its start", "\u0085sc_" + secret, "U+0085 (a control character) at its start"},
		{"a form feed at its end", "sc_" + secret + "\f", "U+000C (a control character) at its end"},
		{"a fingerprint with a no-break space", "3fa4c09b1e2d\u00a0", "U+00A0 (a no-break space) at its end"},
	} {
		for _, how := range []string{"--id", "--id-file"} {
			t.Run(tc.name+" from "+how, func(t *testing.T) {
				ios, _, out, _ := iostreams.Test()
				opened := false
				o := &RevokeOptions{IO: ios, Geek: "alice", Store: func(context.Context) (store.Store, error) {
					opened = true
					return nil, errors.New("opened")
				}}
				if how == "--id" {
					o.IDs = []string{tc.id}
				} else {
					o.IDFile = filepath.Join(t.TempDir(), "ids.txt")
					if err := os.WriteFile(o.IDFile, []byte("0123456789ab\n"+tc.id+"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				err := revokeRun(t.Context(), o)
				var fe *cmdutil.FlagError
				var ec *cmdutil.ExitCodeError
				if !errors.As(err, &fe) || errors.As(err, &ec) {
					t.Fatalf("revoke %s %q = %v; want a usage error (exit 2)", how, tc.id, err)
				}
				if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "3fa4c09b") || !strings.Contains(msg, "letters, digits, '-' and '_'") || !strings.Contains(msg, " has "+tc.want) {
					t.Errorf("refusal %q; want it to say that it has %s and what a chatter ID holds, without the value", msg, tc.want)
				}
				if how == "--id-file" && !strings.Contains(err.Error(), "line 2 of --id-file") {
					t.Errorf("refusal %q; want it to name the line", err)
				}
				if opened || out.Len() != 0 {
					t.Errorf("the store was opened (%v) or stdout written (%q)", opened, out)
				}
			})
		}
	}
}
