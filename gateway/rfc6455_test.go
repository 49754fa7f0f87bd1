package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/pubsub"
)

// The hostile and odd frames of RFC 6455 (the cases of the Autobahn test
// suite's sections 1 to 7), sent on raw sockets.

// Frame opcodes and bits, as a client writes them.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
	finBit         = 0x80
)

// clientFrame is one frame as a client sends it: its first byte (FIN, RSV
// and opcode) given whole, the payload masked.
func clientFrame(first byte, payload []byte) []byte {
	return frameBytes(first, payload, true)
}

// frameBytes encodes one frame, masked or not, with the shortest length.
func frameBytes(first byte, payload []byte, masked bool) []byte {
	b := []byte{first}
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// closePayload is a close frame's payload: the code, then the reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// readServerFrame reads one frame the gateway sent (never masked).
func readServerFrame(t *testing.T, br *bufio.Reader) (fin bool, opcode byte, payload []byte) {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatalf("reading a frame header: %v", err)
	}
	if hdr[1]&0x80 != 0 {
		t.Fatalf("frame header % x: the gateway masked its frame", hdr)
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126, 127:
		ext := make([]byte, 2+6*(n-126))
		if _, err := io.ReadFull(br, ext); err != nil {
			t.Fatalf("reading a frame length: %v", err)
		}
		n = 0
		for _, c := range ext {
			n = n<<8 | uint64(c)
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatalf("reading a %d-byte payload: %v", n, err)
	}
	return hdr[0]&0x80 != 0, hdr[0] & 0x0f, payload
}

// readRawClose reads the gateway's frames up to its close frame and
// returns its code and reason; the pongs before it are returned too.
func readRawClose(t *testing.T, br *bufio.Reader) (code int, reason string, pongs [][]byte) {
	t.Helper()
	for {
		_, op, p := readServerFrame(t, br)
		switch op {
		case opPong:
			pongs = append(pongs, p)
		case opClose:
			if len(p) < 2 {
				t.Fatalf("a close frame of %d bytes, without a code", len(p))
			}
			return int(binary.BigEndian.Uint16(p)), string(p[2:]), pongs
		case opPing:
		default:
			t.Fatalf("a frame of opcode %d before the close frame: %q", op, p)
		}
	}
}

// wantHungUp answers the gateway's close frame as a client does and waits
// for the gateway to close the socket: the end of the stream, not the
// test's deadline.
func wantHungUp(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	_, _ = c.Write(clientFrame(finBit|opClose, nil)) // the gateway may have hung up already
	if _, err := io.Copy(io.Discard, br); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the gateway kept the socket open after its close frame (%v)", err)
		}
		// A reset is an end too: the gateway closed with the client's
		// close frame unread.
	}
}

// messagesOf returns the bodies of the messages routed for id.
func messagesOf(h *fakeHandler, id string) []string {
	var bodies []string
	for _, ev := range h.find(func(ev event) bool {
		return ev.RequestContext.EventType == "MESSAGE" && ev.RequestContext.ConnectionID == id
	}) {
		bodies = append(bodies, ev.Body)
	}
	return bodies
}

// kosme is the Greek word of Autobahn's UTF-8 cases, its omicron with
// oxia (U+1F79) three bytes long.
const kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

// invalidUTF8 is Autobahn's case 6.3.1: kosme followed by an encoded
// surrogate (ED A0 80), then "edited".
var invalidUTF8 = []byte(kosme + "\xed\xa0\x80edited")

// oneByteFrames is data as a text message in frames of one byte each.
func oneByteFrames(data []byte) []byte {
	var b []byte
	for i := range data {
		first := byte(opContinuation)
		if i == 0 {
			first = opText
		}
		if i == len(data)-1 {
			first |= finBit
		}
		b = append(b, clientFrame(first, data[i:i+1])...)
	}
	return b
}

// Every frame RFC 6455 says fails the connection does: the client gets a
// close frame saying why, the socket is closed, $disconnect runs once with
// the status, nothing of the message is routed, and no goroutine is left;
// a client beside them is served throughout.
func TestAFrameThatFailsTheConnectionEndsItAlone(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})
	bystander, bystanderID := connect(t, h, addr)

	const abnormal, protocol = websocket.CloseAbnormalClosure, websocket.CloseProtocolError
	for _, tc := range []struct {
		name   string
		frames []byte
		// The close frame the client gets: its code and a part of its
		// reason; and the $disconnect status and reason.
		code           int
		reason         string
		status         int
		statusReason   string
		routedMessages int // routed before the frame that failed it
	}{
		{name: "a text message that is not UTF-8",
			frames: clientFrame(finBit|opText, invalidUTF8),
			code:   websocket.CloseInvalidFramePayloadData, reason: reasonInvalidUTF8,
			status: websocket.CloseInvalidFramePayloadData, statusReason: reasonInvalidUTF8},
		{name: "a text message that is not UTF-8, in frames of one byte",
			frames: oneByteFrames(invalidUTF8),
			code:   websocket.CloseInvalidFramePayloadData, reason: reasonInvalidUTF8,
			status: websocket.CloseInvalidFramePayloadData, statusReason: reasonInvalidUTF8},
		{name: "a text message whose last byte starts a letter it does not finish",
			frames: clientFrame(finBit|opText, []byte("caf\xc3")),
			code:   websocket.CloseInvalidFramePayloadData, reason: reasonInvalidUTF8,
			status: websocket.CloseInvalidFramePayloadData, statusReason: reasonInvalidUTF8},
		{name: "a text message that is not UTF-8 after one that is",
			frames: append(clientFrame(finBit|opText, []byte(kosme)), clientFrame(finBit|opText, []byte{0xff})...),
			code:   websocket.CloseInvalidFramePayloadData, reason: reasonInvalidUTF8,
			status: websocket.CloseInvalidFramePayloadData, statusReason: reasonInvalidUTF8, routedMessages: 1},
		{name: "a close frame whose reason is not UTF-8",
			frames: clientFrame(finBit|opClose, closePayload(1000, string(invalidUTF8))),
			code:   protocol, reason: "utf8", status: abnormal, statusReason: reasonAbnormal},
		{name: "a close frame with a payload of one byte",
			frames: clientFrame(finBit|opClose, []byte{0x03}),
			code:   protocol, reason: reasonShortClose, status: protocol, statusReason: reasonShortClose},
		{name: "a control frame of 126 bytes",
			frames: clientFrame(finBit|opPing, bytes.Repeat([]byte("p"), 126)),
			code:   protocol, reason: "len > 125 for control", status: abnormal, statusReason: reasonAbnormal},
		// A control frame over the frame size is one over 125 bytes:
		// its length byte says so before its extended length, over
		// which the frame tracker would refuse it, is read.
		{name: "a ping over 32 KB",
			frames: clientFrame(finBit|opPing, bytes.Repeat([]byte("p"), pubsub.MaxFrameBytes+1)),
			code:   protocol, reason: "len > 125 for control", status: abnormal, statusReason: reasonAbnormal},
		{name: "a close frame over 32 KB",
			frames: clientFrame(finBit|opClose, closePayload(1000, strings.Repeat("r", pubsub.MaxFrameBytes))),
			code:   protocol, reason: "len > 125 for control", status: abnormal, statusReason: reasonAbnormal},
		{name: "a close frame of 126 bytes",
			frames: clientFrame(finBit|opClose, closePayload(1000, strings.Repeat("r", 124))),
			code:   protocol, reason: "len > 125 for control", status: abnormal, statusReason: reasonAbnormal},
		{name: "a ping without FIN (a fragmented control frame)",
			frames: clientFrame(opPing, []byte("a")),
			code:   protocol, reason: "FIN not set on control", status: abnormal, statusReason: reasonAbnormal},
		{name: "a fragmented ping inside a fragmented message",
			frames: append(clientFrame(opText, []byte("frag")), clientFrame(opPing, []byte("a"))...),
			code:   protocol, reason: "FIN not set on control", status: abnormal, statusReason: reasonAbnormal},
		{name: "RSV1 set",
			frames: clientFrame(finBit|0x40|opText, []byte("hi")),
			code:   protocol, reason: "RSV1 set", status: abnormal, statusReason: reasonAbnormal},
		{name: "RSV2 set on a ping",
			frames: clientFrame(finBit|0x20|opPing, []byte("hi")),
			code:   protocol, reason: "RSV2 set", status: abnormal, statusReason: reasonAbnormal},
		{name: "RSV3 set after a message",
			frames: append(clientFrame(finBit|opText, []byte("ok")), clientFrame(finBit|0x10|opText, []byte("hi"))...),
			code:   protocol, reason: "RSV3 set", status: abnormal, statusReason: reasonAbnormal, routedMessages: 1},
		{name: "all RSV bits set",
			frames: clientFrame(finBit|0x70|opBinary, []byte{1}),
			code:   protocol, reason: "RSV1 set, RSV2 set, RSV3 set", status: abnormal, statusReason: reasonAbnormal},
		{name: "the reserved data opcode 3",
			frames: clientFrame(finBit|0x3, nil),
			code:   protocol, reason: "bad opcode 3", status: abnormal, statusReason: reasonAbnormal},
		{name: "the reserved data opcode 7 after a message",
			frames: append(clientFrame(finBit|opText, []byte("ok")), clientFrame(finBit|0x7, []byte("x"))...),
			code:   protocol, reason: "bad opcode 7", status: abnormal, statusReason: reasonAbnormal, routedMessages: 1},
		{name: "the reserved control opcode 11",
			frames: clientFrame(finBit|0xb, nil),
			code:   protocol, reason: "bad opcode 11", status: abnormal, statusReason: reasonAbnormal},
		{name: "the reserved control opcode 15 with a payload",
			frames: clientFrame(finBit|0xf, []byte("x")),
			code:   protocol, reason: "bad opcode 15", status: abnormal, statusReason: reasonAbnormal},
		{name: "an unmasked text frame",
			frames: frameBytes(finBit|opText, []byte("hi"), false),
			code:   protocol, reason: "bad MASK", status: abnormal, statusReason: reasonAbnormal},
		{name: "an unmasked ping",
			frames: frameBytes(finBit|opPing, nil, false),
			code:   protocol, reason: "bad MASK", status: abnormal, statusReason: reasonAbnormal},
		{name: "a continuation frame with no message to continue",
			frames: clientFrame(finBit|opContinuation, []byte("lost")),
			code:   protocol, reason: "continuation after FIN", status: abnormal, statusReason: reasonAbnormal},
		{name: "a continuation frame after a whole message",
			frames: append(clientFrame(finBit|opText, []byte("ok")), clientFrame(opContinuation, []byte("lost"))...),
			code:   protocol, reason: "continuation after FIN", status: abnormal, statusReason: reasonAbnormal, routedMessages: 1},
		{name: "a new text message in the middle of a fragmented one",
			frames: append(clientFrame(opText, []byte("frag")), clientFrame(finBit|opText, []byte("new"))...),
			code:   protocol, reason: "data before FIN", status: abnormal, statusReason: reasonAbnormal},
		{name: "a binary message in the middle of a fragmented text message",
			frames: append(clientFrame(opText, []byte("frag")), clientFrame(finBit|opBinary, []byte("new"))...),
			code:   protocol, reason: "data before FIN", status: abnormal, statusReason: reasonAbnormal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br, id := rawUpgrade(t, h, addr, "hostile"+strconv.FormatInt(tagCounter.Add(1), 10))
			if _, err := c.Write(tc.frames); err != nil {
				t.Fatal(err)
			}
			code, reason, _ := readRawClose(t, br)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Errorf("close %d %q; want %d with %q", code, reason, tc.code, tc.reason)
			}
			wantHungUp(t, c, br)
			rc := h.waitDisconnect(t, id).RequestContext
			if rc.DisconnectStatusCode != int64(tc.status) || rc.DisconnectReason == nil || *rc.DisconnectReason != tc.statusReason {
				t.Errorf("$disconnect %d %v; want %d %q", rc.DisconnectStatusCode, rc.DisconnectReason, tc.status, tc.statusReason)
			}
			if got := messagesOf(h, id); len(got) != tc.routedMessages {
				t.Errorf("routed %q; want %d messages", got, tc.routedMessages)
			}
			for _, body := range messagesOf(h, id) {
				if !strings.HasPrefix(body, "ok") && body != kosme {
					t.Errorf("routed %q", body)
				}
			}
		})
	}

	// The client beside them is served, and is the only connection left,
	// with one read loop.
	if err := bystander.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the bystander's message", func(ev event) bool {
		return ev.RequestContext.ConnectionID == bystanderID && ev.Body == "still here"
	})
	waitUntil(t, "one connection and one read loop left", func() bool { return g.Count() == 1 && readLoops() == 1 })
}

// The close codes a client may not send (RFC 6455 §7.4: reserved, or for
// no frame to carry: 1005, 1006, 1015) fail the connection with 1002; the
// others are the $disconnect status, with their reason, answered with the
// same code.
func TestACloseCodeIsTakenOnlyWhenAClientMaySendIt(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	for _, code := range []int{0, 1, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		t.Run(strconv.Itoa(code)+" fails the connection", func(t *testing.T) {
			c, br, id := rawUpgrade(t, h, addr, "badcode"+strconv.Itoa(code))
			if _, err := c.Write(clientFrame(finBit|opClose, closePayload(uint16(code), "bye"))); err != nil {
				t.Fatal(err)
			}
			got, reason, _ := readRawClose(t, br)
			if got != websocket.CloseProtocolError || reason != "bad close code "+strconv.Itoa(code) {
				t.Errorf("close %d %q; want 1002 naming the code", got, reason)
			}
			wantHungUp(t, c, br)
			if rc := h.waitDisconnect(t, id).RequestContext; rc.DisconnectStatusCode != websocket.CloseAbnormalClosure {
				t.Errorf("$disconnect %d; want 1006", rc.DisconnectStatusCode)
			}
		})
	}
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000, 4999} {
		t.Run(strconv.Itoa(code)+" is taken", func(t *testing.T) {
			c, br, id := rawUpgrade(t, h, addr, "code"+strconv.Itoa(code))
			if _, err := c.Write(clientFrame(finBit|opClose, closePayload(uint16(code), "bye"))); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := readRawClose(t, br); got != code {
				t.Errorf("the answer to close %d is close %d", code, got)
			}
			wantHungUp(t, c, br)
			rc := h.waitDisconnect(t, id).RequestContext
			if rc.DisconnectStatusCode != int64(code) || rc.DisconnectReason == nil || *rc.DisconnectReason != "bye" {
				t.Errorf("$disconnect %d %v; want %d bye", rc.DisconnectStatusCode, rc.DisconnectReason, code)
			}
		})
	}
	t.Run("an empty close frame is 1005 without a code in the answer", func(t *testing.T) {
		c, br, id := rawUpgrade(t, h, addr, "emptyclose")
		if _, err := c.Write(clientFrame(finBit|opClose, nil)); err != nil {
			t.Fatal(err)
		}
		if _, op, p := readServerFrame(t, br); op != opClose || len(p) != 0 {
			t.Errorf("answer: opcode %d payload % x; want an empty close frame", op, p)
		}
		wantHungUp(t, c, br)
		if rc := h.waitDisconnect(t, id).RequestContext; rc.DisconnectStatusCode != websocket.CloseNoStatusReceived {
			t.Errorf("$disconnect %d; want 1005", rc.DisconnectStatusCode)
		}
	})
}

// Pings inside a fragmented message are answered at once, each with its
// own payload (125 bytes, the most a control frame carries, included), and
// the message is routed whole; so is a text message whose fragments cut
// through its letters, and one of empty fragments.
func TestPingsInsideAFragmentedMessageAreAnsweredAndTheMessageRoutedWhole(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	c, br, id := rawUpgrade(t, h, addr, "fragments")
	long := bytes.Repeat([]byte{0xfe}, 125) // a ping's payload is any bytes
	var frames []byte
	for _, f := range [][]byte{
		clientFrame(opText, []byte("Hel")),
		clientFrame(finBit|opPing, []byte("one")),
		clientFrame(opContinuation, nil),
		clientFrame(finBit|opPing, long),
		clientFrame(finBit|opPong, []byte("unsolicited")),
		clientFrame(finBit|opContinuation, []byte("lo")),
		// kosme cut inside its letters.
		clientFrame(opText, []byte("\xce")),
		clientFrame(opContinuation, []byte("\xba\xe1\xbd")),
		clientFrame(finBit|opContinuation, []byte("\xb9\xcf\x83\xce\xbc\xce\xb5")),
		clientFrame(finBit|opText, nil),
		clientFrame(finBit|opPing, nil),
	} {
		frames = append(frames, f...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{[]byte("one"), long, {}} {
		if _, op, p := readServerFrame(t, br); op != opPong || !bytes.Equal(p, want) {
			t.Fatalf("opcode %d payload %q; want the pong of %q", op, p, want)
		}
	}
	waitUntil(t, "three messages routed", func() bool { return len(messagesOf(h, id)) == 3 })
	if got := messagesOf(h, id); got[0] != "Hello" || got[1] != kosme || got[2] != "" {
		t.Errorf("routed %q; want Hello, kosme and an empty message", got)
	}
	if _, err := c.Write(clientFrame(finBit|opClose, closePayload(1000, "done"))); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := readRawClose(t, br); code != websocket.CloseNormalClosure {
		t.Errorf("close %d; want the answer 1000", code)
	}
	if rc := h.waitDisconnect(t, id).RequestContext; rc.DisconnectStatusCode != websocket.CloseNormalClosure {
		t.Errorf("$disconnect %d", rc.DisconnectStatusCode)
	}
}
