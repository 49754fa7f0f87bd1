package lockedbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestWritesFromManyGoroutinesAllLand: under -race, concurrent writers and
// a reader share the buffer, and every write is in the end.
func TestWritesFromManyGoroutinesAllLand(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := b.Write([]byte("x\n")); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "x\n"); got != 800 {
		t.Fatalf("%d writes in the buffer; want 800", got)
	}
}
