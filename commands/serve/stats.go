package serve

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"

	"github.com/socks-dev/socks/gateway"
)

// logStats logs the process's runtime figures each time stats receives
// (SIGUSR1 where there is one): what an operator, or the soak test, checks
// for leaks. The heap figure is taken after a garbage collection.
func logStats(ctx context.Context, logger *slog.Logger, gw *gateway.Gateway, stats <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-stats:
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		logger.Warn("runtime stats",
			"goroutines", runtime.NumGoroutine(),
			"connections", gw.Count(),
			"heap_inuse", ms.HeapInuse,
			"open_files", openFiles(),
		)
	}
}

// openFiles counts the process's open file descriptors where /proc or
// /dev/fd lists them, or returns "unknown".
func openFiles() string {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if ents, err := os.ReadDir(dir); err == nil {
			return strconv.Itoa(len(ents) - 1) // less the directory being read
		}
	}
	return "unknown"
}
