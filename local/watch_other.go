//go:build !linux

package local

// watchWake watches the wake file with fsnotify (watch_file.go); Linux
// uses inotify's close-write on the state dir instead (watch_linux.go).
func watchWake(path string, fn func()) (stop func(), err error) {
	return watchWakeFile(path, fn)
}
