package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/socks-dev/socks/commands/cmdutil"
)

// errNoProcess is a PID no process has on this machine.
var errNoProcess = errors.New("no process")

// listensOn reports whether process pid holds a socket listening on TCP
// port, from /proc (Linux): the gateway whose memory bench reads must be
// the process that serves the URL it measures, not whatever process has
// a stale or mistaken PID. known is false when that cannot be told (no
// /proc, or another user's process whose descriptors are not ours to
// read); err is errNoProcess when no process has pid.
func listensOn(pid, port int) (listens, known bool, err error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, perr := os.Stat("/proc/self"); perr == nil {
				return false, true, errNoProcess
			}
		}
		return false, false, nil
	}
	// The inodes of the sockets listening on port, in the process's own
	// network namespace.
	inodes := map[string]bool{}
	read := false
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		data, err := os.ReadFile(dir + "/" + f)
		if err != nil {
			continue
		}
		read = true
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fl[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				inodes["socket:["+fl[9]+"]"] = true
			}
		}
	}
	if !read {
		return false, false, nil
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, true, errNoProcess // ended meanwhile
		}
		return false, false, nil // not ours to read
	}
	if len(inodes) == 0 {
		return false, true, nil
	}
	for _, fd := range fds {
		if l, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && inodes[l] {
			return true, true, nil
		}
	}
	return false, true, nil
}

// processName is the command name of process pid, or "" when unknown.
func processName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// urlPort is the TCP port of a ws://, wss://, http:// or https:// URL.
func urlPort(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	switch u.Scheme {
	case "wss", "https":
		return 443
	}
	return 80
}

// checkPID says whether p.pid is the process of the gateway at p.wsURL,
// whose memory bench may read. recorded is whether the PID is the one the
// local gateway recorded (not --pid): one that is not the gateway's is
// then not measured, with a warning, rather than refused.
func checkPID(errOut func(format string, args ...any), p *plan, recorded bool) error {
	if !procReadable() {
		if !recorded {
			return cmdutil.FlagErrorf("--pid: memory per connection is measured on Linux only (from /proc); leave --pid out to measure the rest")
		}
		errOut("note: memory per connection not measured: it is read from /proc, on Linux only\n")
		p.pid = 0
		return nil
	}
	port := urlPort(p.wsURL)
	listens, known, err := listensOn(p.pid, port)
	var why string
	switch {
	case errors.Is(err, errNoProcess):
		why = fmt.Sprintf("no process has pid %d on this machine", p.pid)
	case !known:
		errOut("note: cannot tell whether process %d serves %s (its sockets are not ours to read); its resident memory is read as the gateway's\n", p.pid, p.wsURL)
		return nil
	case listens:
		return nil
	default:
		name := ""
		if n := processName(p.pid); n != "" {
			name = " (" + n + ")"
		}
		why = fmt.Sprintf("process %d%s does not listen on port %d of %s", p.pid, name, port, p.wsURL)
	}
	if !recorded {
		return cmdutil.FlagErrorf("--pid %d is not the gateway measured: %s; give the process ID of the server that listens there, or leave --pid out", p.pid, why)
	}
	errOut("warning: memory per connection not measured: process %d, recorded by the gateway, is not it: %s (a gateway in another PID namespace, or a stale record); give --pid\n", p.pid, why)
	p.pid = 0
	return nil
}

// procReadable reports whether this machine has /proc to read a
// process's memory and sockets from (Linux).
var procReadable = func() bool {
	_, err := os.Stat("/proc/self/status")
	return err == nil
}
