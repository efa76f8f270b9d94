package store

import (
	"fmt"
	"unicode/utf8"
)

// ClipLen is how many bytes of an untrusted text (a value, key, label or
// file name read from a store) a message echoes at most.
const ClipLen = 200

// Clip returns s when it is at most ClipLen bytes, else its first ClipLen
// bytes (cut at a character boundary) and how long it was, so that a
// message about a 20 MiB value is one short line.
func Clip(s string) string {
	if len(s) <= ClipLen {
		return s
	}
	cut := ClipLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", s[:cut], len(s))
}
