package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// testFrame is one frame to encode: its payload length, whether it is
// masked, and how its length is written (0: the shortest form, else 7, 16
// or 64 bits, which may be longer than needed).
type testFrame struct {
	n      uint64
	masked bool
	form   int
}

// encodeFrames returns the frames' bytes (payloads of arbitrary bytes
// shaped like headers, to catch a tracker that parses them) and the offset
// of the byte that completes the length of the first frame over max, or -1.
func encodeFrames(frames []testFrame, max uint64) ([]byte, int) {
	var b []byte
	bad := -1
	for _, f := range frames {
		b = append(b, 0x82) // FIN, binary
		maskBit := byte(0)
		if f.masked {
			maskBit = 0x80
		}
		form := f.form
		if form == 0 {
			switch {
			case f.n <= 125:
				form = 7
			case f.n <= 0xffff:
				form = 16
			default:
				form = 64
			}
		}
		switch form {
		case 7:
			b = append(b, maskBit|byte(f.n))
		case 16:
			b = append(b, maskBit|126)
			b = binary.BigEndian.AppendUint16(b, uint16(f.n))
		default:
			b = append(b, maskBit|127)
			b = binary.BigEndian.AppendUint64(b, f.n)
		}
		if f.n > max {
			if bad < 0 {
				bad = len(b) - 1
			}
			// Not a stream the tracker can follow past here.
			return b, bad
		}
		if f.masked {
			b = append(b, 0xff, 0xfe, 0x81, 0x7f)
		}
		for i := uint64(0); i < f.n; i++ {
			b = append(b, []byte{0x81, 0xff, 127, 126}[i%4])
		}
	}
	return b, bad
}

// feed scans stream in chunks of the sizes next returns and reports how
// many bytes were consumed and the error.
func feed(stream []byte, max uint64, next func() int) (int, error) {
	t := frameTracker{max: max}
	consumed := 0
	for len(stream) > 0 {
		chunk := stream[:min(next(), len(stream))]
		k, err := t.scan(chunk)
		consumed += k
		if err != nil {
			if k2, err2 := t.scan([]byte{0}); k2 != 0 || !errors.Is(err2, err) {
				return consumed, errors.New("the error is not sticky")
			}
			return consumed, err
		}
		if k != len(chunk) {
			return consumed, errors.New("short scan without an error")
		}
		stream = stream[len(chunk):]
	}
	return consumed, nil
}

// checkStream scans stream byte by byte, all at once and in random chunks.
func checkStream(t *testing.T, name string, frames []testFrame, max uint64, rng *rand.Rand) {
	t.Helper()
	stream, bad := encodeFrames(frames, max)
	splits := map[string]func() int{
		"byte by byte": func() int { return 1 },
		"all at once":  func() int { return len(stream) },
		"random":       func() int { return 1 + rng.IntN(20) },
		"random large": func() int { return 1 + rng.IntN(70000) },
	}
	for how, next := range splits {
		consumed, err := feed(stream, max, next)
		if bad < 0 {
			if err != nil || consumed != len(stream) {
				t.Errorf("%s, %s: consumed %d of %d, err %v; want all, no error", name, how, consumed, len(stream), err)
			}
			continue
		}
		if !errors.Is(err, errFrameTooBig) || consumed != bad {
			t.Errorf("%s, %s: consumed %d, err %v; want %d, errFrameTooBig", name, how, consumed, err, bad)
		}
	}
}

func TestFrameTrackerTable(t *testing.T) {
	const max = 32 << 10
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		frames []testFrame
	}{
		{"empty frames", []testFrame{{0, false, 0}, {0, true, 0}, {0, true, 16}, {0, false, 64}}},
		{"7-bit lengths", []testFrame{{1, true, 0}, {125, true, 0}, {125, false, 0}}},
		{"16-bit lengths", []testFrame{{126, true, 0}, {4096, true, 0}, {0xffff >> 1, true, 0}}},
		{"exactly the limit", []testFrame{{max, true, 0}, {5, true, 0}, {max, false, 64}}},
		{"over by one", []testFrame{{10, true, 0}, {max + 1, true, 0}}},
		{"over by one, 64-bit", []testFrame{{max, true, 0}, {max + 1, true, 64}}},
		{"40 KB", []testFrame{{40 << 10, true, 0}}},
		{"16-bit maximum", []testFrame{{125, true, 0}, {0xffff, true, 0}}},
		{"huge 64-bit", []testFrame{{1 << 63, true, 64}}},
		{"all ones", []testFrame{{1<<64 - 1, true, 64}}},
		{"long forms of small lengths", []testFrame{{5, true, 16}, {5, true, 64}, {126, false, 64}}},
	} {
		checkStream(t, tc.name, tc.frames, max, rng)
	}
}

func TestFrameTrackerRandomStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const max = 300 // small, so that 16-bit lengths cross it
	lengths := []uint64{0, 1, 2, 124, 125, 126, 127, 128, 255, 256, max - 1, max, max + 1, 1000, 0xffff, 1 << 20}
	for i := range 500 {
		frames := make([]testFrame, 1+rng.IntN(8))
		for j := range frames {
			f := testFrame{n: lengths[rng.IntN(len(lengths))], masked: rng.IntN(4) != 0}
			if rng.IntN(4) == 0 { // sometimes a longer form than needed
				f.form = []int{16, 64}[rng.IntN(2)]
				if f.form == 16 && f.n > 0xffff {
					f.form = 64
				}
			}
			frames[j] = f
		}
		checkStream(t, fmt.Sprintf("stream %d %v", i, frames), frames, max, rng)
	}
}

// A connection without a file descriptor (here a pipe nobody reads yet)
// takes every write at once into its backlog; the flusher writes it out in
// order once the other end reads, and a failed write is reported once and
// fails the writes after it.
func TestAFrameConnWritesThroughItsBacklogWithoutWaiting(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	failed := make(chan error, 4)
	fc := newFrameConn(server, 1<<10, func(err error) { failed <- err })
	if fc.raw != nil {
		t.Fatal("a pipe has no file descriptor")
	}
	var want []byte
	for i := range 100 {
		p := fmt.Appendf(nil, "frame %03d;", i)
		if n, err := fc.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		want = append(want, p...)
	}
	if q := fc.queuedBytes(); q != len(want) {
		t.Fatalf("%d bytes queued; want %d", q, len(want))
	}
	_ = client.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
	fc.waitFlushed(wait)
	if q := fc.queuedBytes(); q != 0 {
		t.Fatalf("%d bytes still queued after the flush", q)
	}

	client.Close()
	if _, err := fc.Write([]byte("lost")); err != nil {
		t.Fatalf("a write to a closed peer failed at once (%v); it goes to the backlog first", err)
	}
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("onWriteError got nil")
		}
	case <-time.After(wait):
		t.Fatal("the failed flush was not reported")
	}
	fc.waitFlushed(wait)
	if _, err := fc.Write([]byte("after")); err == nil {
		t.Fatal("a write after a failed one succeeded")
	}
	if len(failed) != 0 {
		t.Fatal("the failure was reported more than once")
	}
}

// A close frame's payload is empty or starts with a 2-byte code (RFC 6455
// §5.5.1): one of 1 byte, in any length form, is refused at the byte that
// completes its length, cut anywhere; a data frame of 1 byte is not.
func TestFrameTrackerRefusesACloseFrameOfOneByte(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		bad    int // the offset of the refused length's last byte, or -1
	}{
		{"an empty close frame", []byte{0x88, 0x80, 1, 2, 3, 4}, -1},
		{"a close frame with a code", []byte{0x88, 0x82, 1, 2, 3, 4, 5, 6}, -1},
		{"a text frame of 1 byte", []byte{0x81, 0x81, 1, 2, 3, 4, 5}, -1},
		{"a ping of 1 byte", []byte{0x89, 0x81, 1, 2, 3, 4, 5}, -1},
		{"a binary frame of 1 byte whose payload is a close frame's first byte", []byte{0x82, 0x81, 1, 2, 3, 4, 0x88, 0x81, 0x80, 1, 2, 3, 4}, -1},
		{"a close frame of 1 byte", []byte{0x88, 0x81, 1, 2, 3, 4, 5}, 1},
		{"a close frame of 1 byte after a message", []byte{0x81, 0x80, 1, 2, 3, 4, 0x88, 0x81, 1, 2, 3, 4, 5}, 7},
		{"a close frame of 1 byte, with RSV bits", []byte{0xf8, 0x81, 1, 2, 3, 4, 5}, 1},
		{"a close frame of 1 byte in the 16-bit form", []byte{0x88, 0xfe, 0, 1, 1, 2, 3, 4, 5}, 3},
		{"a close frame of 1 byte in the 64-bit form", append(append([]byte{0x88, 0xff}, binary.BigEndian.AppendUint64(nil, 1)...), 1, 2, 3, 4, 5), 9},
	} {
		for _, chunk := range []int{1, 2, 3, len(tc.stream)} {
			consumed, err := feed(tc.stream, 125, func() int { return chunk })
			if tc.bad < 0 && (err != nil || consumed != len(tc.stream)) {
				t.Errorf("%s, in chunks of %d: consumed %d, %v; want all", tc.name, chunk, consumed, err)
			}
			if tc.bad >= 0 && (!errors.Is(err, errShortClose) || consumed != tc.bad) {
				t.Errorf("%s, in chunks of %d: consumed %d, %v; want %d, errShortClose", tc.name, chunk, consumed, err, tc.bad)
			}
		}
	}
}
