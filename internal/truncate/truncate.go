// Package truncate shortens untrusted text for error messages and logs
// without splitting a UTF-8 sequence.
package truncate

import "unicode/utf8"

// Ellipsis marks text that was cut.
const Ellipsis = "…"

// String returns s when it is at most n bytes long; otherwise its longest
// prefix of at most n bytes that ends at a rune boundary, followed by
// Ellipsis. Invalid UTF-8 in the kept prefix is kept as it is.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + Ellipsis
}
