package demo

import (
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
)

func TestPipedOutputEndsWithAOneLineVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  Outcome
		want string
	}{
		{"a demo that behaved", Outcome{OK: true, Refused: true, ElapsedMS: 12}, "ok: everything behaved in 12ms"},
		{"a demo that did not names each problem", Outcome{Problems: []string{"a forged chatter ID was not refused with 403", "bob received 1 message(s), expected 0"}},
			"FAIL: a forged chatter ID was not refused with 403; bob received 1 message(s), expected 0"},
		{"the verdict comes after the kept state dir", Outcome{OK: true, Refused: true, StateDir: "/tmp/x"}, "ok: everything behaved in 0ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, out, _ := iostreams.Test()
			if err := render(&Options{IO: ios}, nil, nil, tc.out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; last != tc.want {
				t.Errorf("last line %q; want %q\n%s", last, tc.want, out)
			}
		})
	}
}
