package subs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

var now = time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)

func seeded(t *testing.T) store.Store {
	t.Helper()
	db, err := local.Open(context.Background(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := db.Store()
	for _, c := range []pubsub.Connection{
		{ID: "b1", Geek: "bob", Topics: []string{"news"}, ConnectedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)},
		{ID: "a2", Geek: "alice", Topics: []string{"updates", "news"}, ConnectedAt: now.Add(-5 * time.Minute), ExpiresAt: now.Add(time.Hour)},
		{ID: "a1", Geek: "alice", Topics: []string{"."}, ConnectedAt: now.Add(-90 * time.Minute), ExpiresAt: now.Add(30 * time.Minute)},
		{ID: "x", Geek: "carol", Topics: []string{"updates"}, ConnectedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
	} {
		if err := s.PutConnection(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func listOpts(t *testing.T, s store.Store, p store.Pusher) (*ListOptions, *bytes.Buffer, *bytes.Buffer) {
	ios, _, out, errOut := iostreams.Test()
	return &ListOptions{
		IO:    ios,
		Store: func(context.Context) (store.Store, error) { return s, nil },
		Pusher: func(context.Context, int) (store.Pusher, error) {
			if p == nil {
				return nil, backend.ErrNoGateway
			}
			return p, nil
		},
		Now: func() time.Time { return now },
	}, out, errOut
}

func TestList(t *testing.T) {
	t.Run("plain output is TSV sorted by geek and connection time with RFC 3339 times", func(t *testing.T) {
		opts, out, _ := listOpts(t, seeded(t), nil)
		if err := listRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		want := "CONNECTION\tGEEK\tTOPICS\tCONNECTED\tLAST ACTIVE\n" +
			"a1\talice\t.\t2030-06-01T10:30:00Z\t-\n" +
			"a2\talice\tnews,updates\t2030-06-01T11:55:00Z\t-\n" +
			"b1\tbob\tnews\t2030-06-01T11:59:00Z\t-\n"
		if out.String() != want {
			t.Errorf("got:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("a terminal gets a table with relative ages", func(t *testing.T) {
		opts, out, _ := listOpts(t, seeded(t), nil)
		opts.IO.SetTTY(false, true, false)
		if err := listRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"╭", "1h30m ago", "5m ago", "1m ago", "\x1b["} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("table does not contain %q:\n%s", s, out)
			}
		}
	})
	t.Run("--live shows the last activity and gone connections", func(t *testing.T) {
		fake := opstest.NewFakePusher()
		fake.SetLive(store.ConnectionInfo{LastActiveAt: now.Add(-30 * time.Second)}, "a1", "a2")
		opts, out, errOut := listOpts(t, seeded(t), fake)
		opts.Live = true
		if err := listRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "a1\talice\t.\t2030-06-01T10:30:00Z\t2030-06-01T11:59:30Z\n") ||
			!strings.Contains(out.String(), "b1\tbob\tnews\t2030-06-01T11:59:00Z\tgone\n") {
			t.Errorf("got:\n%s", out)
		}
		if errOut.Len() != 0 {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("--live without a gateway notes it and shows -", func(t *testing.T) {
		opts, out, errOut := listOpts(t, seeded(t), nil)
		opts.Live = true
		if err := listRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut.String(), "no local gateway is running") || strings.Count(out.String(), "\t-\n") != 3 {
			t.Errorf("stdout:\n%s\nstderr: %s", out, errOut)
		}
	})
	t.Run("--geek and --topic filter, --json prints the records", func(t *testing.T) {
		opts, out, _ := listOpts(t, seeded(t), nil)
		opts.Geek, opts.Topic, opts.JSON = "alice", "news", true
		if err := listRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		var got []struct {
			ID         string   `json:"connectionId"`
			Geek       string   `json:"geek"`
			Topics     []string `json:"topics"`
			AgeSeconds int      `json:"ageSeconds"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != "a2" || got[0].AgeSeconds != 300 || len(got[0].Topics) != 2 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("nothing matched is not an error: exit 0, stdout empty, stderr says what", func(t *testing.T) {
		opts, out, errOut := listOpts(t, seeded(t), nil)
		opts.Geek = "nobody"
		if err := listRun(context.Background(), opts); err != nil {
			t.Errorf("got %v; want no error for an empty list", err)
		}
		if out.Len() != 0 {
			t.Errorf("stdout %q; want nothing", out)
		}
		if !strings.Contains(errOut.String(), "no open connections of nobody") {
			t.Errorf("stderr %q; want it to name the geek", errOut)
		}
	})
	t.Run("--json with nothing matched prints [] and exits 0", func(t *testing.T) {
		opts, out, errOut := listOpts(t, seeded(t), nil)
		opts.Topic, opts.JSON = "nothing", true
		if err := listRun(context.Background(), opts); err != nil || out.String() != "[]\n" || errOut.Len() != 0 {
			t.Errorf("got %v, stdout %q, stderr %q; want no error, [] and a quiet stderr", err, out, errOut)
		}
	})
	t.Run("a bad geek is a usage error", func(t *testing.T) {
		opts, _, _ := listOpts(t, seeded(t), nil)
		opts.Geek = strings.Repeat("g", 200)
		var fe *cmdutil.FlagError
		if err := listRun(context.Background(), opts); !errors.As(err, &fe) {
			t.Errorf("got %v", err)
		}
	})
}

func TestStats(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	s := seeded(t)
	opts := &StatsOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return s, nil }, Now: func() time.Time { return now }}
	if err := statsRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	want := "connections\t3\ngeeks\t2\noldest\ta1\t2030-06-01T10:30:00Z\ntopic\tnews\t2\ntopic\t.\t1\ntopic\tupdates\t1\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	out.Reset()
	opts.JSON = true
	if err := statsRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"connections":3`) || !strings.Contains(out.String(), `{"topic":"news","connections":2}`) {
		t.Errorf("json %s", out)
	}
	out.Reset()
	opts.JSON = false
	ios.SetTTY(false, true, false)
	if err := statsRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "connections open to") || !strings.Contains(out.String(), "1h30m ago") {
		t.Errorf("styled:\n%s", out)
	}
}

// clockedStore is a store whose records carry another clock's times (on
// AWS, API Gateway's and the Lambda's): store.Clock.
type clockedStore struct{ store.Store }

func (clockedStore) Now(context.Context) (time.Time, error) { return now, nil }

// TestListAndStatsJudgeExpiryByTheStoresClock: from a machine whose
// clock was hours ahead of AWS's, subs list showed no live connection
// (and stats counted none); behind, it listed dead ones.
func TestListAndStatsJudgeExpiryByTheStoresClock(t *testing.T) {
	want := "CONNECTION\tGEEK\tTOPICS\tCONNECTED\tLAST ACTIVE\n" +
		"a1\talice\t.\t2030-06-01T10:30:00Z\t-\n" +
		"a2\talice\tnews,updates\t2030-06-01T11:55:00Z\t-\n" +
		"b1\tbob\tnews\t2030-06-01T11:59:00Z\t-\n"
	for _, skew := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		s := clockedStore{seeded(t)}
		opts, out, _ := listOpts(t, s, nil)
		opts.Now = func() time.Time { return now.Add(skew) }
		if err := listRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("this machine %v off: got:\n%s\nwant:\n%s", skew, out, want)
		}
		ios, _, sout, _ := iostreams.Test()
		so := &StatsOptions{IO: ios, Store: func(context.Context) (store.Store, error) { return s, nil }, Now: opts.Now, JSON: true}
		if err := statsRun(context.Background(), so); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sout.String(), `"connections":3`) {
			t.Errorf("this machine %v off: stats %s; want 3 connections", skew, sout)
		}
	}
}

// Without a callback URL nothing was tried: the error says what is missing
// and how to set it, not that the Management API could not be reached.
func TestListLiveWithoutACallbackURLSaysWhatIsMissing(t *testing.T) {
	opts, _, _ := listOpts(t, seeded(t), nil)
	opts.Pusher = func(context.Context, int) (store.Pusher, error) {
		return nil, fmt.Errorf("%w: set --callback-url", backend.ErrNoEndpoint)
	}
	opts.Live = true
	err := listRun(context.Background(), opts)
	if err == nil || strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "--live needs the Management API: no API Gateway endpoint configured: set --callback-url") {
		t.Fatalf("error %v; want what is missing and how to set it", err)
	}
}
