package pubsub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// chatterBytes is the entropy of a chatter ID: 192 random bits.
const chatterBytes = 24

// chatterPrefix marks socks chatter IDs so that a leaked one is recognisable
// by secret scanners.
const chatterPrefix = "sc_"

// NewChatterID returns a fresh URL-safe secret with 192 random bits.
func NewChatterID() string {
	var b [chatterBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return chatterPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashChatterID returns the hex SHA-256 of a chatter ID. Only this hash is
// stored. A plain hash is enough: the secret has 192 random bits, so there is
// nothing to brute-force that a slow KDF would protect.
func HashChatterID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Fingerprint is the short, non-secret handle shown by `chatter list` and
// accepted by `chatter revoke --id`: the first 12 hex digits of the hash.
func Fingerprint(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// LooksLikeChatterID reports whether s has the shape of an issued secret
// (as opposed to a fingerprint).
func LooksLikeChatterID(s string) bool {
	return strings.HasPrefix(s, chatterPrefix)
}
