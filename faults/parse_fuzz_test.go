package faults_test

import (
	"maps"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/socks-dev/socks/faults"
)

// nonZeroRates is s's rates without those of 0, which String leaves out.
func nonZeroRates(s faults.Spec) map[faults.Kind]float64 {
	m := map[faults.Kind]float64{}
	for k, p := range s.Rates {
		if p != 0 {
			m[k] = p
		}
	}
	return m
}

// FuzzAFaultSpecReadsBackOrIsRefusedInWords reads any `serve --faults`
// value: an accepted spec holds only what Syntax allows (probabilities
// between 0 and 1, the post faults adding up to 1 at most, a slow delay
// up to a minute, a connect rate above 0) and String writes it back as a
// spec Parse reads to the same faults; a refused one says why in the
// package's words, never strconv's or time's, and on one printable line:
// the value it quotes never brings a control character, an escape
// sequence or a line break to serve's usage error.
func FuzzAFaultSpecReadsBackOrIsRefusedInWords(f *testing.F) {
	for _, s := range []string{
		"", "post500=0.1,post429=0.05,reset=0.02,slow=0.02:2s,drop-disconnect=0.1,connect-rate=500/s",
		" reset-after=0.5 , seed=7", "slow=1", "slow=0:5s", "post500=0", "post500=NaN", "connect-rate=NaN/s",
		"post500=1e-400", "slow=0.5:1m0s", "connect-rate=0x1p-2/s", "seed=18446744073709551615", "post500=0.6,post429=0.6",
		"post500", "=", ",,", "slow=0.1:-1s",
		"post500=1\x1b[2J", "slow=0.1:1\ns", "connect-rate=5\r00/s", "seed=1\u202e2", "post500=\xff", "post\x00=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		spec, err := faults.Parse(in)
		if err != nil {
			msg := err.Error()
			if msg == "" {
				t.Fatalf("%q: refused with no words", in)
			}
			for _, r := range msg {
				if !unicode.IsPrint(r) && r != ' ' {
					t.Fatalf("%q: the refusal %q holds %U, which is no printable character", in, msg, r)
				}
			}
			for _, leak := range []string{"strconv", "time:", "%!", "NaN", "Inf"} {
				if strings.Contains(msg, leak) && !strings.Contains(in, leak) {
					t.Fatalf("%q: the refusal %q shows the library's words (%q)", in, msg, leak)
				}
			}
			return
		}
		sum := 0.0
		for k, p := range spec.Rates {
			if !(p >= 0 && p <= 1) {
				t.Fatalf("%q: accepted with %s=%v, not a probability", in, k, p)
			}
			if k != faults.DropDisconnect {
				sum += p
			}
		}
		if !(sum <= 1+1e-9) {
			t.Fatalf("%q: accepted with post faults adding up to %v", in, sum)
		}
		if !(spec.SlowDelay > 0 && spec.SlowDelay <= time.Minute) {
			t.Fatalf("%q: accepted with a slow delay of %s", in, spec.SlowDelay)
		}
		if !(spec.ConnectRate >= 0 && spec.ConnectRate <= 1e6) {
			t.Fatalf("%q: accepted with a connect rate of %v", in, spec.ConnectRate)
		}
		out := spec.String()
		back, err := faults.Parse(out)
		if err != nil {
			t.Fatalf("%q: read as %q, which Parse refuses: %v", in, out, err)
		}
		if !maps.Equal(nonZeroRates(back), nonZeroRates(spec)) || back.ConnectRate != spec.ConnectRate || back.Seed != spec.Seed ||
			(spec.Rates[faults.Slow] > 0 && back.SlowDelay != spec.SlowDelay) {
			t.Fatalf("%q: read as %+v, written %q, read back as %+v", in, spec, out, back)
		}
	})
}
