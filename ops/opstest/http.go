package opstest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// APIServer starts a loopback server that answers every request with
// status, the way API Gateway's Management API answers (with the
// X-Amzn-Errortype header when errType is set), and returns its URL. It is
// closed when the test ends.
func APIServer(t *testing.T, status int, errType string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if errType != "" {
			w.Header().Set("X-Amzn-Errortype", errType)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"message":"` + http.StatusText(status) + `"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
