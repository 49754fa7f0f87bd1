// Package text holds the small wording helpers the commands share.
package text

import "strconv"

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
