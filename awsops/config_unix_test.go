//go:build unix

package awsops

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestASharedAWSFileThatIsNoFileIsRefusedNotWaitedOn: a FIFO at
// AWS_CONFIG_FILE or AWS_SHARED_CREDENTIALS_FILE (or at ~/.aws/config,
// ~/.aws/credentials, checked alike but not here: the SDK reads $HOME as
// the process starts) held every AWS command in the SDK's read for ever,
// out of reach of Ctrl-C, as a FIFO at socks's own config.toml did. Each
// is refused at once, naming the file, what it is and where it was
// named; /dev/null, the usual empty file, is still taken.
func TestASharedAWSFileThatIsNoFileIsRefusedNotWaitedOn(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		env       map[string]string
		path, say string
	}{
		{"AWS_CONFIG_FILE", map[string]string{"AWS_CONFIG_FILE": fifo}, fifo, "$AWS_CONFIG_FILE"},
		{"AWS_SHARED_CREDENTIALS_FILE", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": fifo}, fifo, "$AWS_SHARED_CREDENTIALS_FILE"},
		{"AWS_CONFIG_FILE, a directory", map[string]string{"AWS_CONFIG_FILE": dir}, dir, "a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			isolateAWSEnv(t)
			t.Setenv("AWS_ACCESS_KEY_ID", "test")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			done := make(chan error, 1)
			go func() {
				_, err := LoadConfig(t.Context(), Settings{Region: "eu-west-1"})
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				// The read of a FIFO no one writes never ends: that is the
				// defect, not a slow machine.
				t.Fatal("LoadConfig still waits on the FIFO after 30 s; want it refused at once")
			}
			for _, want := range []string{c.path, c.say, "not a regular file"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("LoadConfig = %v; want it refused, saying %q", err, want)
				}
			}
		})
	}
	t.Run("/dev/null", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "test")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		t.Setenv("AWS_CONFIG_FILE", os.DevNull)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
		if _, err := LoadConfig(t.Context(), Settings{Region: "eu-west-1"}); err != nil {
			t.Errorf("LoadConfig with the shared files at /dev/null = %v; want it loaded", err)
		}
	})
}
