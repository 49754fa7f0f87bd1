// Package bench holds the side-by-side benchmarks behind BENCHMARKS.md:
// socks against the raw gorilla/websocket ceiling (package ceiling), in one
// process on the same data, so that their ratios mean something on a busy
// machine. scripts/bench runs them with `socks bench` and writes
// BENCHMARKS.md.
package bench
