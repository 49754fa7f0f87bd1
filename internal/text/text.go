// Package text holds the small wording helpers the commands share.
package text

import (
	"strconv"
	"strings"
)

// Plural returns noun as is for one, else with an "s": Plural(2, "table")
// is "tables".
func Plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// Pluralize returns n followed by noun, made plural unless n is one:
// Pluralize(1, "table") is "1 table", Pluralize(3, "table") "3 tables".
func Pluralize(n int, noun string) string {
	return strconv.Itoa(n) + " " + Plural(n, noun)
}

// And joins items as a sentence does: "a", "a and b", "a, b and c".
func And(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// WasWere is "was" for one, else "were".
func WasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}
