//go:build !linux

package local

import "errors"

// watchWake is only implemented on Linux; elsewhere long polls find
// messages from other processes at their next poll.
func watchWake(string, func()) (func(), error) {
	return nil, errors.New("watching the state file is only supported on Linux")
}
