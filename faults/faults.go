// Package faults makes deliveries misbehave on purpose, the way API Gateway
// sometimes does: 500s, 429 throttling, connection resets (before the
// message reaches the client, or after, so that a retry delivers it twice),
// slow answers, lost $disconnect events and a limited connect rate.
//
// One parsed Spec drives an Injector, which acts at two places alike: as a
// store.Pusher decorator (Pusher), so that it reaches any delivery path,
// in-process or not; and as HTTP middleware on the local gateway's
// Management API (Management), so that any SDK or HTTP client posting to
// the gateway meets the same faults. `socks serve --faults SPEC` uses
// both.
package faults

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind names one fault.
type Kind string

// The faults a Spec can inject.
const (
	// Post500: a post is answered 500 Internal Server Error; the message
	// does not reach the client.
	Post500 Kind = "post500"
	// Post429: a post is answered 429 LimitExceededException.
	Post429 Kind = "post429"
	// Reset: the connection of a post is reset before it is handled.
	Reset Kind = "reset"
	// ResetAfter: the message reaches the client, then the connection of
	// the post is reset instead of answering: the poster cannot tell it
	// from Reset, so a retry delivers a duplicate.
	ResetAfter Kind = "reset-after"
	// Slow: a post is answered only after a delay (slow=P:DURATION).
	Slow Kind = "slow"
	// DropDisconnect: a closed connection's $disconnect event is lost, as
	// API Gateway sometimes loses it; its record stays until prune-stale.
	DropDisconnect Kind = "drop-disconnect"
	// ConnectRate: connects over this many per second are refused with
	// 429 (connect-rate=N/s), as API Gateway's account limit does.
	ConnectRate Kind = "connect-rate"
	// seed makes the random draws repeatable (seed=N).
	seed Kind = "seed"
)

// postKinds are the faults drawn for each post, in the order of the draw.
var postKinds = []Kind{Post500, Post429, Reset, ResetAfter, Slow}

// DefaultSlowDelay is the delay of slow=P without a duration.
const DefaultSlowDelay = 2 * time.Second

// Spec says which faults to inject and how often. The zero Spec injects
// nothing.
type Spec struct {
	// Rates are the probabilities (0..1) of each post fault and of
	// DropDisconnect. At most one post fault is drawn per post, so the
	// post rates add up to at most 1.
	Rates map[Kind]float64
	// SlowDelay is how long a Slow post waits.
	SlowDelay time.Duration
	// ConnectRate bounds connects per second (0: no bound).
	ConnectRate float64
	// Seed, when not zero, seeds the random draws.
	Seed uint64
}

// Syntax is the spec syntax, for help texts and errors.
const Syntax = "post500=P,post429=P,reset=P,reset-after=P,slow=P[:DURATION],drop-disconnect=P,connect-rate=N/s,seed=N (P between 0 and 1)"

// Parse reads a spec such as
// "post500=0.1,post429=0.05,reset=0.02,slow=0.02:2s,drop-disconnect=0.1,connect-rate=500/s".
// An empty string is the zero Spec.
func Parse(s string) (Spec, error) {
	spec := Spec{Rates: map[Kind]float64{}, SlowDelay: DefaultSlowDelay}
	if strings.TrimSpace(s) == "" {
		return spec, nil
	}
	seen := map[Kind]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, value, ok := strings.Cut(part, "=")
		k := Kind(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			return Spec{}, fmt.Errorf("fault %q has no value: write NAME=VALUE, as in %s", part, Syntax)
		}
		if seen[k] {
			return Spec{}, fmt.Errorf("fault %q is given twice", k)
		}
		seen[k] = true
		switch k {
		case Post500, Post429, Reset, ResetAfter, DropDisconnect:
			p, err := probability(k, value)
			if err != nil {
				return Spec{}, err
			}
			spec.Rates[k] = p
		case Slow:
			pv, dv, hasDelay := strings.Cut(value, ":")
			p, err := probability(k, pv)
			if err != nil {
				return Spec{}, err
			}
			spec.Rates[k] = p
			if hasDelay {
				d, err := time.ParseDuration(dv)
				if err != nil || d <= 0 || d > time.Minute {
					return Spec{}, fmt.Errorf("slow=%q: the delay after ':' must be a duration between 1ms and 1m, such as 2s", value)
				}
				spec.SlowDelay = d
			}
		case ConnectRate:
			n, ok := strings.CutSuffix(value, "/s")
			r, err := strconv.ParseFloat(n, 64)
			if !ok || err != nil || !(r > 0 && r <= 1e6) { // NaN too
				return Spec{}, fmt.Errorf("connect-rate=%q: give connects per second, such as 500/s", value)
			}
			spec.ConnectRate = r
		case seed:
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil || n == 0 {
				return Spec{}, fmt.Errorf("seed=%q: give a whole number above 0", value)
			}
			spec.Seed = n
		default:
			return Spec{}, fmt.Errorf("unknown fault %q: the faults are %s", k, Syntax)
		}
	}
	sum := 0.0
	for _, k := range postKinds {
		sum += spec.Rates[k]
	}
	if sum > 1+1e-9 {
		return Spec{}, fmt.Errorf("the post faults add up to %.3g: at most one is drawn per post, so post500, post429, reset, reset-after and slow may add up to 1 at most", sum)
	}
	return spec, nil
}

func probability(k Kind, v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err != nil || !(p >= 0 && p <= 1) { // NaN too
		return 0, fmt.Errorf("%s=%q: give a probability between 0 and 1, such as 0.05 for 5%%", k, v)
	}
	return p, nil
}

// IsZero reports whether the spec injects nothing.
func (s Spec) IsZero() bool {
	for _, p := range s.Rates {
		if p > 0 {
			return false
		}
	}
	return s.ConnectRate == 0
}

// String writes the spec back in the syntax Parse reads.
func (s Spec) String() string {
	var parts []string
	for _, k := range append(slices.Clone(postKinds), DropDisconnect) {
		p := s.Rates[k]
		if p <= 0 {
			continue
		}
		v := strconv.FormatFloat(p, 'g', -1, 64)
		if k == Slow {
			v += ":" + s.SlowDelay.String()
		}
		parts = append(parts, string(k)+"="+v)
	}
	if s.ConnectRate > 0 {
		parts = append(parts, string(ConnectRate)+"="+strconv.FormatFloat(s.ConnectRate, 'g', -1, 64)+"/s")
	}
	if s.Seed != 0 {
		parts = append(parts, string(seed)+"="+strconv.FormatUint(s.Seed, 10))
	}
	return strings.Join(parts, ",")
}

// Injector draws faults from a Spec and counts those it injected. Its
// methods are safe for concurrent use.
type Injector struct {
	spec Spec
	now  func() time.Time

	mu     sync.Mutex
	rng    *rand.Rand
	counts map[Kind]int
	// tokens and last are the connect-rate token bucket.
	tokens float64
	last   time.Time
}

// New returns an Injector for spec.
func New(spec Spec) *Injector {
	src := rand.NewPCG(rand.Uint64(), rand.Uint64())
	if spec.Seed != 0 {
		src = rand.NewPCG(spec.Seed, spec.Seed)
	}
	if spec.Rates == nil {
		spec.Rates = map[Kind]float64{}
	}
	if spec.SlowDelay <= 0 {
		spec.SlowDelay = DefaultSlowDelay
	}
	return &Injector{spec: spec, now: time.Now, rng: rand.New(src), counts: map[Kind]int{}, tokens: spec.ConnectRate}
}

// Spec returns the injector's spec.
func (in *Injector) Spec() Spec { return in.spec }

// drawPost draws the fault of one post ("" for none) and counts it.
func (in *Injector) drawPost() Kind {
	in.mu.Lock()
	defer in.mu.Unlock()
	r := in.rng.Float64()
	for _, k := range postKinds {
		p := in.spec.Rates[k]
		if r < p {
			in.counts[k]++
			return k
		}
		r -= p
	}
	return ""
}

// DropDisconnect draws whether a closed connection's $disconnect is lost.
func (in *Injector) DropDisconnect() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rng.Float64() < in.spec.Rates[DropDisconnect] {
		in.counts[DropDisconnect]++
		return true
	}
	return false
}

// AllowConnect reports whether one more connect fits the connect rate
// (a token bucket holding one second's worth).
func (in *Injector) AllowConnect() bool {
	if in.spec.ConnectRate <= 0 {
		return true
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	now := in.now()
	if !in.last.IsZero() {
		in.tokens = min(in.spec.ConnectRate, in.tokens+now.Sub(in.last).Seconds()*in.spec.ConnectRate)
	}
	in.last = now
	if in.tokens < 1 {
		in.counts[ConnectRate]++
		return false
	}
	in.tokens--
	return true
}

// Counts returns how many of each fault were injected so far.
func (in *Injector) Counts() map[Kind]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[Kind]int, len(in.counts))
	for k, n := range in.counts {
		out[k] = n
	}
	return out
}

// Summary says what was injected, as "post500=12 reset-after=3", or
// "none".
func (in *Injector) Summary() string {
	counts := in.Counts()
	var parts []string
	for _, k := range append(slices.Clone(postKinds), DropDisconnect, ConnectRate) {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// SetClock replaces the clock of the connect rate (tests).
func (in *Injector) SetClock(now func() time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.now = now
}
