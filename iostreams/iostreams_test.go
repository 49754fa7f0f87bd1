package iostreams_test

import (
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ui"
)

func TestUTF8Locale(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{"LANG": "en_US.UTF-8"}, true},
		{map[string]string{"LANG": "de_DE.utf8"}, true},
		{map[string]string{"LANG": "C"}, false},
		{map[string]string{"LANG": "en_US.ISO-8859-1"}, false},
		{map[string]string{"LANG": "en_US.UTF-8", "LC_ALL": "POSIX"}, false},
		{map[string]string{"LANG": "C", "LC_CTYPE": "C.UTF-8"}, true},
	} {
		if got := iostreams.UTF8Locale(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: UTF-8 %v; want %v", tc.env, got, tc.want)
		}
	}
}

func TestANonUTF8TerminalGetsASCIIGlyphs(t *testing.T) {
	var out strings.Builder
	ios, _, _, _ := iostreams.Test()
	ios.Out = iostreams.ASCIIGlyphs(&out)
	ios.SetTTY(false, true, false)
	ios.SetNoColor(true)
	u := ui.New(ios)
	if err := u.Table([]string{"GEEK", "TOPICS"}, [][]string{{"Friendless", "updates"}, {"Zoë", "news"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ios.Out.Write([]byte(u.Check(true) + " ok " + u.Check(false) + " failed → fix · ● connected ↻ renewing… ping 350µs\n")); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(out.String(), "Zoë", "Zoe") // the data passes as it is
	for _, r := range got {
		if r > 127 {
			t.Fatalf("a glyph %q reached a terminal that is not UTF-8:\n%s", r, out.String())
		}
	}
	lines := strings.Split(got, "\n")
	for _, l := range lines[:5] { // the table's lines stay aligned
		if len(l) != len(lines[0]) {
			t.Errorf("table lines of different widths:\n%s", got)
			break
		}
	}
	if !strings.Contains(out.String(), "Zoë") {
		t.Errorf("the data was changed:\n%s", out.String())
	}
}
