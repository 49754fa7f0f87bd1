package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAWSAccessDeniedNamesTheMissingPermission points the AWS backend at a
// loopback endpoint that answers every call the way AWS answers a caller
// whose IAM policy lacks the action: 400 AccessDeniedException in the JSON
// protocol both DynamoDB and SQS speak. No emulator is needed.
func TestAWSAccessDeniedNamesTheMissingPermission(t *testing.T) {
	t.Parallel()
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform this action"}`)
	}))
	t.Cleanup(denied.Close)
	env := awsEnv(t, map[string]string{"SOCKS_ENDPOINT_URL": denied.URL})

	for _, tc := range []struct {
		name   string
		args   []string
		phrase string
	}{
		{"listing chatter IDs on DynamoDB", []string{"chatter", "list", "--backend", "aws", "--stack", "denied"}, "access denied: the credentials lack permission for"},
		{"publishing to SQS", []string{"publish", "--backend", "aws", "--stack", "denied", "--topic", "t", "--message", "x"}, "access denied: the credentials lack permission for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runEnv(t, env, nil, tc.args...)
			checkFailure(t, r, 1, tc.phrase)
		})
	}
}
