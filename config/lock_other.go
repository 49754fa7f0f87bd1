//go:build !unix

package config

// lockDir does nothing where flock is missing; SaveProfile's check just
// before its rename still catches most saves racing it.
func lockDir(string) (func(), error) { return func() {}, nil }
