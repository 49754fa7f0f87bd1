package faults

import (
	"encoding/json"
	"github.com/socks-dev/socks/internal/backoff"
	"net"
	"net/http"
)

// Management wraps the handler of a Management API so that its POSTs (the
// PostToConnection calls) meet the injector's faults. Other methods pass
// through. Errors are written as API Gateway writes them, so that the SDK
// returns its typed errors; resets close the TCP connection with an RST.
func (in *Injector) Management(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		switch in.drawPost() {
		case Post500:
			writeError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
			return
		case Post429:
			writeError(w, http.StatusTooManyRequests, "LimitExceededException", "Rate exceeded")
			return
		case Reset:
			reset(w)
			return
		case ResetAfter:
			// Handle the post in full (the frame is queued for the
			// client), then reset instead of answering.
			next.ServeHTTP(&discard{header: http.Header{}}, r)
			reset(w)
			return
		case Slow:
			if backoff.Sleep(r.Context(), in.spec.SlowDelay) != nil {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// reset drops the request's TCP connection with an RST (SO_LINGER 0), or
// just closes it when it cannot be hijacked.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server drops the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func writeError(w http.ResponseWriter, status int, errorType, msg string) {
	body, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("X-Amzn-Errortype", errorType)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
