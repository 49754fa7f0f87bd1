//go:build linux

package local

import "testing"

func TestWakeInFindsTheWakeFileAmongEvents(t *testing.T) {
	ev := func(name string, pad int) []byte {
		b := make([]byte, 16+len(name)+pad)
		n := uint32(len(name) + pad)
		b[12], b[13], b[14], b[15] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		copy(b[16:], name)
		return b
	}
	buf := append(ev("socks.db-wal", 4), ev("socks.db-wake", 3)...)
	if !wakeIn(buf, "socks.db-wake") {
		t.Error("the wake file's event was not found")
	}
	if wakeIn(ev("socks.db-wal", 4), "socks.db-wake") {
		t.Error("another file's event woke")
	}
	if wakeIn(buf[:20], "socks.db-wake") {
		t.Error("a truncated buffer woke")
	}
}
