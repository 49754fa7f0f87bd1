// Package web holds what socks serves to browsers: socks.js (the
// dependency-free ES module client), its TypeScript declarations
// socks.d.ts, and the live page index.html. `socks serve` serves them and
// `socks client-js` writes the client files out, from this one embedded
// copy.
package web

import (
	"embed"
	"io/fs"
)

//go:embed socks.js socks.d.ts
var client embed.FS

// ClientFiles are the names of the client's files, in the order
// `socks client-js` writes them.
var ClientFiles = []string{"socks.js", "socks.d.ts"}

// Client returns the client's files (ClientFiles).
func Client() fs.FS { return client }

// ClientFile returns one of ClientFiles.
func ClientFile(name string) ([]byte, error) { return client.ReadFile(name) }
