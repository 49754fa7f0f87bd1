package iostreams_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
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
	if err := u.Table([]string{"GEEK", "TOPICS"}, [][]string{{"Friendless", "updates"}, {"Zoe", "news"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ios.Out.Write([]byte(u.Check(true) + " ok " + u.Check(false) + " failed → fix · ● connected ↻ renewing… ping 350µs\n")); err != nil {
		t.Fatal(err)
	}
	// (Text that is not ASCII: TestANonUTF8TerminalGetsNoByteItWouldReadAsAC1Control.)
	got := out.String()
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
}

func TestANonUTF8TerminalGetsNoByteItWouldReadAsAC1Control(t *testing.T) {
	// To a terminal that is not UTF-8, each byte 0x80-0x9f is a C1
	// control: "ћ" (U+045B) is D1 9B, and 9B is CSI; "ѝ" (D1 9D) opens an
	// OSC and "ќ" (D1 9C) ends it, a clipboard write. What is not ASCII
	// is shown escaped there, tables aligned.
	var out strings.Builder
	ios, _, _, _ := iostreams.Test()
	ios.Out = iostreams.ASCIIGlyphs(&out)
	ios.SetTTY(false, true, false)
	ios.SetNoColor(true)
	ios.SetUTF8(false)
	u := ui.New(ios)
	if err := u.Table([]string{"GEEK", "TOPICS"}, [][]string{{u.Name("Zoë"), "news"}, {"x", u.Text("ћ31mred ѝ52;c;aGk=ќ")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ios.Out.Write([]byte("body ћ2J\n")); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for i := 0; i < len(got); i++ {
		if got[i] >= 0x80 {
			t.Fatalf("byte %#x reached a terminal that is not UTF-8:\n%q", got[i], got)
		}
	}
	for _, want := range []string{`Zo\u00eb`, `\u045b31mred \u045d52;c;aGk=\u045c`, `body \u045b2J`} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in\n%s", want, got)
		}
	}
	lines := strings.Split(got, "\n")
	for _, l := range lines[:6] {
		if len(l) != len(lines[0]) {
			t.Errorf("table lines of different widths:\n%s", got)
			break
		}
	}
}

func TestJSONOnANonUTF8TerminalStaysTheSameJSON(t *testing.T) {
	var out strings.Builder
	line := `{"geek":"Zoë🦄","topic":"ћ"}`
	if _, err := iostreams.ASCIIGlyphs(&out).Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	var got, want map[string]string
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("%s is not JSON: %v", out.String(), err)
	}
	_ = json.Unmarshal([]byte(line), &want)
	if !maps.Equal(got, want) {
		t.Errorf("%s reads back as %v; want %v", out.String(), got, want)
	}
}

func TestTERMDumbIsADumbTerminal(t *testing.T) {
	for term, dumb := range map[string]bool{"dumb": true, "xterm-256color": false, "": false} {
		s := iostreams.System(func(k string) string {
			if k == "TERM" {
				return term
			}
			return ""
		})
		if s.Dumb() != dumb {
			t.Errorf("TERM=%q: Dumb() = %v; want %v", term, s.Dumb(), dumb)
		}
		s.SetTTY(false, true, true)
		if s.CanSpin() == dumb {
			t.Errorf("TERM=%q: CanSpin() = %v on a terminal", term, s.CanSpin())
		}
	}
}

// A Windows console without virtual-terminal processing (an older
// Windows 10 conhost) showed the spinner's "\r\x1b[K" and the colour codes
// as junk. System turns it on for each console stream; where it cannot,
// that stream is a dumb terminal, as with TERM=dumb: no colour, no spinner.
func TestAConsoleWithoutEscapeSequencesIsADumbTerminal(t *testing.T) {
	refuse := func(which *os.File) func(*os.File) error {
		return func(f *os.File) error {
			if f == which {
				return errors.New("SetConsoleMode: the parameter is incorrect")
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name                     string
		enable                   func(*os.File) error
		colorOut, colorErr, spin bool
		dumb                     bool
	}{
		{"enabled on both", refuse(nil), true, true, true, false},
		{"refused on stdout", refuse(os.Stdout), false, true, false, true},
		{"refused on stderr", refuse(os.Stderr), true, false, false, true},
	} {
		s, _, _, _ := iostreams.Test()
		s.SetTTY(true, true, true)
		iostreams.NeedEscapes(s, tc.enable, os.Stdout, os.Stderr)
		if s.ColorEnabled() != tc.colorOut || s.ColorEnabledStderr() != tc.colorErr || s.CanSpin() != tc.spin || s.Dumb() != tc.dumb {
			t.Errorf("%s: colour %v/%v, CanSpin %v, Dumb %v; want %v/%v, %v, %v", tc.name,
				s.ColorEnabled(), s.ColorEnabledStderr(), s.CanSpin(), s.Dumb(), tc.colorOut, tc.colorErr, tc.spin, tc.dumb)
		}
	}
	// Only a terminal is asked: piped, nothing is turned on.
	s, _, _, _ := iostreams.Test()
	s.SetTTY(false, false, true)
	var asked []*os.File
	iostreams.NeedEscapes(s, func(f *os.File) error { asked = append(asked, f); return errors.New("no") }, os.Stdout, os.Stderr)
	if len(asked) != 1 || asked[0] != os.Stderr {
		t.Errorf("asked for %v; want stderr alone", asked)
	}
}
