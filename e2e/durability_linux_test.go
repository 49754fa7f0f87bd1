//go:build linux

package e2e

// A full disk, the honest way without root: a file size limit
// (RLIMIT_FSIZE) on the socks process, so that its writes to the state
// file fail with EFBIG as they would with ENOSPC on a full disk. Go
// ignores SIGXFSZ, so the write fails, not the process.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// runFull runs `socks ARGS --state-dir DIR` with no room to write: a file
// size limit of 0 (`ulimit -f 0`) makes every write to a file fail.
func (s *stack) runFull(args ...string) result {
	s.t.Helper()
	return runVia(s.t, []string{"sh", "-c", `ulimit -f 0 && exec "$@"`, "sh"}, socksEnv(s.t.TempDir()), nil, append(args, "--state-dir", s.dir)...)
}

// limitFileSize sets the soft file size limit of the running process pid:
// 0 leaves it no room to write, unix.RLIM_INFINITY gives the room back.
func limitFileSize(t *testing.T, pid int, limit uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: min(limit, old.Max), Max: old.Max}, nil); err != nil {
		t.Fatalf("setting the file size limit of pid %d: %v", pid, err)
	}
}

// TestAPublishThatCannotBeWrittenIsNotAcknowledged: a `socks publish`
// whose write to the state file fails (the disk full) exits 1 saying so
// in the user's words, prints no message ID, queues nothing, and leaves
// the state file sound: the next publish, with room, is delivered, first.
// On a new state dir the file cannot be created, which it says alike.
func TestAPublishThatCannotBeWrittenIsNotAcknowledged(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))

	for _, wait := range []bool{false, true} {
		args := []string{"publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":"lost"}`}
		if wait {
			args = append(args, "--wait")
		}
		r := s.runFull(args...)
		checkFailure(t, r, 1, "the disk is full")
		if n := s.queued(t); n != 0 {
			t.Errorf("%d messages queued after a publish that failed; want none", n)
		}
	}

	if rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":"kept"}`); rep.Report.Delivered != 1 {
		t.Errorf("publish --wait with room again reported %s; want delivered=1", rep)
	}
	if got := readText(t, conn); got != `{"n":"kept"}` {
		t.Errorf("the client got %q first; want %q (nothing of the failed publishes)", got, `{"n":"kept"}`)
	}
	if r := s.run("doctor"); r.code != 0 || !strings.Contains(r.stdout, "ok\tstate file") {
		t.Errorf("doctor after the failed writes:\n%s", r)
	}

	// The first command of a new state dir cannot create its file either.
	fresh := newStack(t)
	checkFailure(t, fresh.runFull("publish", "--topic", "updates", "--body", `{"n":"lost"}`), 1, "the disk is full")
}

// TestDoctorOnAFullDiskSaysToFreeSpaceNotToMoveTheFileAway: a state file
// that cannot be opened for want of room (no process has it open, so its
// -wal and -shm must be made) fails doctor's state file check with the
// fix to free space; it said to move the file away, which would lose the
// queue, the dead letters and the chatter IDs, and free nothing.
func TestDoctorOnAFullDiskSaysToFreeSpaceNotToMoveTheFileAway(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.must("publish", "--topic", "updates", "--body", `{"n":"kept"}`)
	r := s.runFull("doctor")
	if r.code != 1 || !regexp.MustCompile(`(?m)^fail\tstate file\t.*the disk is full.*\t.*free some space`).MatchString(r.stdout) || strings.Contains(r.stdout, "move the file away") {
		t.Errorf("want the state file check failed with the fix to free space, not to move the file away:\n%s", r)
	}
	if n := s.queued(t); n != 1 {
		t.Errorf("the queue holds %d messages; want the 1 published before", n)
	}
}

// TestServeOnAFullDiskKeepsDeliveringAndRecovers: while `socks serve`
// cannot write its state file, it keeps running: what it can do without a
// write (a `publish --direct` through its Management API) still reaches
// its clients, and a message another process queued waits. Once there is
// room again, that message is delivered, with no restart, and the state
// file is sound.
func TestServeOnAFullDiskKeepsDeliveringAndRecovers(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))

	bob := s.issue("bob")
	limitFileSize(t, srv.cmd.Process.Pid, 0)
	// A $connect serve cannot record is refused 503, saying why.
	if _, resp, err := dial(t, srv.connectURL("bob", bob, "updates")); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a $connect while serve cannot write: %v, %v; want HTTP 503", resp, err)
	} else if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "cannot record the connection now") {
		t.Errorf("the 503's body %q does not say why", b)
	}
	id := s.must("publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":"queued"}`)
	// serve's broker cannot take it off the queue (a receive is a write).
	srv.awaitStderr("the disk is full", receiveTimeout)

	r := s.run("publish", "--direct", "--geek", "alice", "--topic", "updates", "--body", `{"n":"direct"}`)
	if r.code != 0 {
		t.Errorf("publish --direct while serve cannot write:\n%s", r)
	}
	if got := readText(t, conn); got != `{"n":"direct"}` {
		t.Errorf("got %q; want %q", got, `{"n":"direct"}`)
	}

	limitFileSize(t, srv.cmd.Process.Pid, unix.RLIM_INFINITY)
	if got := readText(t, conn); got != `{"n":"queued"}` {
		t.Errorf("got %q once serve could write again; want the queued message %q (%s)", got, `{"n":"queued"}`, id)
	}
	// The outage is logged as it starts, each minute and as it ends, not
	// at each of the broker's tries (about one a second).
	srv.awaitStderr("receiving from the queue again", receiveTimeout)
	if rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":"after"}`); rep.Report.Delivered != 1 {
		t.Errorf("publish --wait after the disk had room again reported %s; want delivered=1", rep)
	}
	if got := readText(t, conn); got != `{"n":"after"}` {
		t.Errorf("got %q; want %q", got, `{"n":"after"}`)
	}
	if r := s.run("doctor"); r.code != 0 || !strings.Contains(r.stdout, "ok\tstate file") {
		t.Errorf("doctor after serve's failed writes:\n%s", r)
	}
}

// runUnprivileged is stack.run for a socks process that the permissions
// of files bind: as root, setpriv drops the capability to override them
// (CAP_DAC_OVERRIDE) from the process; as another user, nothing is needed.
func (s *stack) runUnprivileged(args ...string) result {
	s.t.Helper()
	var via []string
	if os.Geteuid() == 0 {
		via = []string{"setpriv", "--bounding-set=-dac_override,-dac_read_search"}
	}
	return runVia(s.t, via, socksEnv(s.t.TempDir()), nil, append(args, "--state-dir", s.dir)...)
}

// TestAStateDirOrFileThatCannotBeWrittenSaysWhichAndHowToFix: a state dir
// or a state file the user cannot write is named as what it is; doctor
// reads it read-only and warns that serve and publish cannot run there,
// and its fix is to make it writable, never to move the file away (which
// would lose the queue, dead letters and chatter IDs it holds).
func TestAStateDirOrFileThatCannotBeWrittenSaysWhichAndHowToFix(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.must("publish", "--topic", "updates", "--body", `{"n":"kept"}`)
	file := filepath.Join(s.dir, "socks.db")
	for _, tc := range []struct {
		name, path, says string
	}{
		{"a read-only state dir", s.dir, "state dir " + s.dir + " is not writable"},
		{"a read-only state file", file, "state file " + file + " is not writable"},
	} {
		t.Run(tc.name+" is named, with the fix", func(t *testing.T) {
			defer chmod(t, tc.path, 0o500)()
			checkFailure(t, s.runUnprivileged("publish", "--topic", "updates", "--body", `{"n":"refused"}`), 1, tc.says)
			// doctor reads the file read-only: its health is checked and its
			// counts shown, and that it cannot be written is a warning that
			// says what cannot run there. (It exits 1: no gateway runs.)
			r := s.runUnprivileged("doctor")
			if r.code != 1 || !regexp.MustCompile(`(?m)^warn\tstate file\t.*schema readable.*`+regexp.QuoteMeta(tc.says)+`.*\t.*serve.*publish.*writable`).MatchString(r.stdout) || strings.Contains(r.stdout, "move the file away") {
				t.Errorf("want the state file check warning, naming %q, with what cannot run and a fix that makes it writable (not moving the file away):\n%s", tc.says, r)
			}
			if !regexp.MustCompile(`(?m)^warn\tqueue\t1 waiting`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^ok\tdead letters\tnone`).MatchString(r.stdout) {
				t.Errorf("want the queue and dead letters read from the read-only state file:\n%s", r)
			}
		})
	}
	if n := s.queued(t); n != 1 {
		t.Errorf("the queue holds %d messages; want the 1 published before", n)
	}
}

// TestAWriteAheadLogOrSharedMemoryMadeReadOnlyIsNamedWithTheFix: with
// `socks serve` running (so that socks.db-wal and socks.db-shm stay), a
// publish that cannot write one of them (made read-only) exits 1, prints
// no message ID, and names that file with the chmod that mends it. Before,
// it said "attempt to write a readonly database (8)".
func TestAWriteAheadLogOrSharedMemoryMadeReadOnlyIsNamedWithTheFix(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	for _, suffix := range []string{"-wal", "-shm"} {
		t.Run("socks.db"+suffix, func(t *testing.T) {
			path := filepath.Join(s.dir, "socks.db"+suffix)
			restore := chmod(t, path, 0o400)
			r := s.runUnprivileged("publish", "--topic", "updates", "--body", `{"n":"refused"}`)
			restore()
			checkFailure(t, r, 1, "state file "+path+" is not writable: permission denied")
			if !strings.Contains(r.stderr, "chmod u+w "+path+")") {
				t.Errorf("want the fix, chmod u+w %s:\n%s", path, r)
			}
			// Writable again, the same publish passes.
			s.must("publish", "--topic", "updates", "--body", `{"n":"kept"}`)
		})
	}
}

// chmod sets the permissions of path to mode and returns what sets them
// back.
func chmod(t *testing.T, path string, mode os.FileMode) (restore func()) {
	t.Helper()
	fi, err := os.Stat(path)
	if err == nil {
		err = os.Chmod(path, mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Chmod(path, fi.Mode().Perm()); err != nil {
			t.Error(err)
		}
	}
}

// TestAStateDirThatCannotBeWrittenIsRead: the read commands and doctor
// read a state dir the user may read but not write (a backup, a read-only
// mount) and
// write nothing there; a copy whose write-ahead log SQLite cannot read
// without writing beside it (taken while serve ran) says so, and how to
// read it.
func TestAStateDirThatCannotBeWrittenIsRead(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.issue("alice")
	s.must("publish", "--topic", "updates", "--body", `{"n":"kept"}`)
	before := dirNames(t, s.dir)
	restore := chmod(t, s.dir, 0o500)
	if r := s.runUnprivileged("chatter", "list", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"alice"`) {
		t.Errorf("chatter list of a read-only state dir: want exit 0 listing alice:\n%s", r)
	}
	for _, args := range [][]string{{"subs", "list", "--json"}, {"subs", "stats", "--json"}, {"dlq", "list", "--json"}} {
		if r := s.runUnprivileged(args...); r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "[") && !strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
			t.Errorf("%v of a read-only state dir: want exit 0 and JSON:\n%s", args, r)
		}
	}
	if r := s.runUnprivileged("doctor", "--json"); !regexp.MustCompile(`"name":\s*"state file",\s*"status":\s*"warn"`).MatchString(r.stdout) {
		t.Errorf("doctor of a read-only state dir: want the state file checked read-only, with a warning:\n%s", r)
	}
	restore()
	if after := dirNames(t, s.dir); !slices.Equal(before, after) {
		t.Errorf("the state dir held %v before the reads, %v after", before, after)
	}

	// A backup of the state file and its write-ahead log taken while
	// serve had them open.
	s.serve()
	s.must("publish", "--topic", "updates", "--body", `{"n":"in the log"}`)
	b := &stack{t: t, dir: t.TempDir()}
	for _, name := range []string{"socks.db", "socks.db-wal"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err == nil {
			err = os.WriteFile(filepath.Join(b.dir, name), data, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	defer chmod(t, b.dir, 0o500)()
	checkFailure(t, b.runUnprivileged("dlq", "list"), 1, "cannot read state file "+filepath.Join(b.dir, "socks.db"))
	if r := b.runUnprivileged("dlq", "list"); !strings.Contains(r.stderr, "copy the state dir somewhere writable") {
		t.Errorf("want the way to read it:\n%s", r)
	}
}

// dirNames returns the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
