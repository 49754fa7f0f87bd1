package backend

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/atomicfile"
)

func TestTheGatewayKeysAreAnAWSCredentialsFile(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "") // only the file may supply credentials
	}
	path := filepath.Join(t.TempDir(), "state", config.ManagementKeysFile)
	creds, err := EnsureManagementKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v, %v; want mode 0600", fi, err)
	}
	again, err := EnsureManagementKeys(path)
	if err != nil || again.AccessKeyID != creds.AccessKeyID || again.SecretAccessKey != creds.SecretAccessKey {
		t.Fatalf("a second EnsureManagementKeys gave another pair (%v)", err)
	}
	// What the AWS CLI, boto3 and the SDKs read with
	// AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE.
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithSharedCredentialsFiles([]string{path}),
		awsconfig.WithSharedConfigProfile(config.ManagementProfile),
		awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || got.AccessKeyID != creds.AccessKeyID || got.SecretAccessKey != creds.SecretAccessKey {
		t.Fatalf("the SDK read %q, %v; want the pair socks wrote", got.AccessKeyID, err)
	}
}

func TestADamagedKeyFileSaysWhatToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.ManagementKeysFile)
	if err := os.WriteFile(path, []byte("[other]\naws_access_key_id = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureManagementKeys(path); err == nil {
		t.Fatal("a file without the profile was accepted")
	}
}

// TestAKeyFileOthersCanReadOrPlantedIsRefused: the key pair is the only
// thing that keeps anyone who reaches the gateway from pushing to its
// clients. A file others may read (made with a umask of 022, or copied)
// gives them the secret, and one another user wrote (a --keys-file in a
// shared /tmp they created first) is a pair they chose: serve refuses
// both, saying what to do, without the secret.
func TestAKeyFileOthersCanReadOrPlantedIsRefused(t *testing.T) {
	const planted = "[" + config.ManagementProfile + "]\naws_access_key_id = AKSOCKSPLANTED\naws_secret_access_key = known-to-whoever-wrote-it\n"
	t.Run("readable by others", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), config.ManagementKeysFile)
		if err := os.WriteFile(path, []byte(planted), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := EnsureManagementKeys(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) || strings.Contains(err.Error(), "known-to-whoever") {
			t.Fatalf("EnsureManagementKeys = %v; want a refusal that says chmod 600 %s and not the secret", err, path)
		}
	})
	t.Run("another user's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("giving a file to another user needs root; the other case runs as anyone")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, config.ManagementKeysFile)
		if err := os.WriteFile(path, []byte(planted), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err := EnsureManagementKeys(path)
		if err == nil || !strings.Contains(err.Error(), "another user") || strings.Contains(err.Error(), "known-to-whoever") {
			t.Fatalf("EnsureManagementKeys = %v; want a refusal saying another user owns it", err)
		}
		// Through a link to it, as well.
		link := filepath.Join(dir, "link")
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		if _, err := EnsureManagementKeys(link); err == nil || !strings.Contains(err.Error(), "another user") {
			t.Fatalf("EnsureManagementKeys through a link = %v; want a refusal", err)
		}
	})
}

// TestAStateDirOthersMayWriteIsRefused: a --state-dir in a place others
// may write (made with mode 777, or under another user's control, as a
// shared /tmp/socks) lets them plant links where socks writes: the wake
// file beside the state file is written at each publish, so a link
// there to one of the user's files (or, run as root, /etc/passwd)
// damages it. Such a state dir is refused before anything is written.
func TestAStateDirOthersMayWriteIsRefused(t *testing.T) {
	attack := func(t *testing.T, dir string) {
		t.Helper()
		victim := filepath.Join(t.TempDir(), "precious")
		if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(dir, config.StateFile+"-wake")); err != nil {
			t.Fatal(err)
		}
		b, err := Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, Options{})
		if err == nil {
			defer b.DB.Close()
			_, _ = b.Queue.Send(context.Background(), []byte(`{"n":1}`))
		}
		if got, _ := os.ReadFile(victim); string(got) != "precious" {
			t.Errorf("the file the planted link points at now holds %q", got)
		}
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("Open = %v; want a refusal naming %s", err, dir)
		}
	}
	t.Run("writable by everyone", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		attack(t, dir)
	})
	t.Run("shared and sticky, as /tmp is, with no advice to chmod it", func(t *testing.T) {
		// `--state-dir /tmp` was told "chmod o-w /tmp": advice that breaks
		// every other program on the machine.
		dir := filepath.Join(t.TempDir(), "tmp")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		attack(t, dir)
		_, err := Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, Options{})
		if err == nil || strings.Contains(err.Error(), "chmod") || !strings.Contains(err.Error(), "mkdir -m 700 "+filepath.Join(dir, "socks")) {
			t.Errorf("Open = %v; want a refusal that asks for a directory of the user's own in it, never to chmod it", err)
		}
	})
	t.Run("another user's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("giving a directory to another user needs root; the other case runs as anyone")
		}
		dir := filepath.Join(t.TempDir(), "theirs")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		attack(t, dir)
	})
}

// TestALinkPlantedInAGroupWritableStateDirIsNotFollowed: a state dir its
// group may write is taken (a user's private group is the usual one), but
// when the group has other members one of them may plant a link at the
// wake file, which every publish writes a byte into: the user's file it
// points at lost its first byte. The link is not followed; the publish
// is queued all the same (a missed wake-up costs a poll).
func TestALinkPlantedInAGroupWritableStateDirIsNotFollowed(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits, no O_NOFOLLOW")
	}
	dir := filepath.Join(t.TempDir(), "group")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, config.StateFile+"-wake")); err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, Options{})
	if err != nil {
		t.Fatalf("Open on a state dir its group may write: %v", err)
	}
	defer b.DB.Close()
	if _, err := b.Queue.Send(context.Background(), []byte(`{"n":1}`)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Errorf("the file the planted link points at now holds %q", got)
	}
	if msgs, err := b.Queue.Receive(context.Background(), 10, time.Minute, 0); err != nil || len(msgs) != 1 {
		t.Errorf("received %d messages, %v; want the one sent", len(msgs), err)
	}
}

// Processes that start at once on a fresh state dir (a serve with
// --require-signature and a publish) each make sure of the key pair: every
// one gets the same pair, and none reads the file before the pair is in
// it (one read an empty file and was told it was damaged).
func TestKeyPairsMadeAtOnceAreOneWholePair(t *testing.T) {
	for round := range 40 {
		path := filepath.Join(t.TempDir(), config.ManagementKeysFile)
		const n = 8
		got := make([]aws.Credentials, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				got[i], errs[i] = EnsureManagementKeys(path)
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: %v", round, errs[i])
			}
			if got[i].AccessKeyID != got[0].AccessKeyID || got[i].SecretAccessKey != got[0].SecretAccessKey {
				t.Fatalf("round %d: two different pairs", round)
			}
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Fatalf("round %d: the dir holds %d files; want the key file alone", round, len(entries))
		}
	}
}

// A state dir on a file system without hard links (a FAT or exFAT USB
// stick, some FUSE mounts, a Windows share) refuses the link that puts
// the key pair in place: the pair is then created in place, as it was
// before links, rather than serve --require-signature failing there.
func TestTheKeyPairIsMadeWhereHardLinksAreRefused(t *testing.T) {
	for _, linkErr := range []error{syscall.EPERM, syscall.ENOTSUP, syscall.EXDEV} {
		t.Run(linkErr.Error(), func(t *testing.T) {
			keyFiles.Before = func(step atomicfile.Step, name string) error {
				if step == atomicfile.Link {
					return &os.LinkError{Op: "link", New: name, Err: linkErr}
				}
				return nil
			}
			t.Cleanup(func() { keyFiles.Before = nil })
			path := filepath.Join(t.TempDir(), config.ManagementKeysFile)
			made, err := EnsureManagementKeys(path)
			if err != nil {
				t.Fatalf("EnsureManagementKeys: %v", err)
			}
			again, err := EnsureManagementKeys(path)
			if err != nil || again.AccessKeyID != made.AccessKeyID || again.SecretAccessKey != made.SecretAccessKey {
				t.Fatalf("read back %v, %v; want the pair made", again.AccessKeyID, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Fatalf("the dir holds %d files; want the key file alone", len(entries))
			}
		})
	}
}

// A --keys-file written by hand in Notepad starts with a UTF-8 byte order
// mark, which hid its first line: "[socks-local]" was not found, and the
// file was said to have no such profile. One saved by Windows
// PowerShell's > is UTF-16, which is refused saying so. As --id-file
// reads its file (cmdutil.ReadSecretFile), by one mechanism
// (text.UTF8File).
func TestAKeyFileWithAByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	body := "[" + config.ManagementProfile + "]\naws_access_key_id = AKSOCKSTEST\naws_secret_access_key = s3cret\n"
	if err := os.WriteFile(path, []byte("\xef\xbb\xbf"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, ok, err := ReadManagementKeys(path)
	if err != nil || !ok || creds.AccessKeyID != "AKSOCKSTEST" || creds.SecretAccessKey != "s3cret" {
		t.Errorf("with a UTF-8 mark: %v, %v, %v; want the pair read", creds.AccessKeyID, ok, err)
	}
	u16 := []byte{0xff, 0xfe}
	for _, r := range body {
		u16 = append(u16, byte(r), 0)
	}
	if err := os.WriteFile(path, u16, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadManagementKeys(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "UTF-16") || !strings.Contains(err.Error(), "save it as UTF-8") {
		t.Errorf("UTF-16: %v; want it refused, naming the file and saying to save it as UTF-8", err)
	}
}
