package store_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/socks-dev/socks/store"
)

// FuzzParseReport reads back any stored report (the JSON of a report row
// or item that `publish --wait` and `socks subs` show): a report that
// parses writes back to the same JSON, and one that does not is refused in
// words, never with encoding/json's or the time package's own ("json:
// cannot unmarshal string into Go struct field Report.targets of type
// int").
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		`{"id":"m-1","targets":3,"delivered":1,"gone":0,"failed":2,"pending":2,"errors":["HTTP 500"],"followUps":{"k":{"connections":2,"failed":2,"pending":2}},"at":"2026-11-22T12:00:00.123Z"}`,
		`{"id":"m-1","targets":"3"}`,
		`{"at":"yesterday"}`,
		`{"followUps":{"k":[]}}`,
		`{"targets":1e400}`,
		`[]`, ``, `{`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := store.ParseReport(data)
		if err != nil {
			for _, leak := range []string{"json:", "Go struct", "Go value", "store.", "parsing time", "2006", "time.Time"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("%q: refused with %q, the library's words (%q)", data, err, leak)
				}
			}
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			return // a time json.Marshal refuses (a year past 9999): the writer's
		}
		again, err := store.ParseReport(b)
		if err != nil {
			t.Fatalf("%q parsed, but its own JSON %s does not: %v", data, b, err)
		}
		if b2, _ := json.Marshal(again); string(b2) != string(b) {
			t.Fatalf("round trip changed the report:\n%s\n%s", b, b2)
		}
	})
}
