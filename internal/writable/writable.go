// Package writable tells whether this user may write a file, without
// opening it, and how to make it so.
package writable
