package store

import (
	"fmt"
	"strconv"
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

// quoteLen is how many bytes of an untrusted text QuoteClip quotes: half
// of ClipLen, so that the message around it is not clipped again.
const quoteLen = ClipLen / 2

// QuoteClip returns s quoted as %q does when it is at most ClipLen/2
// bytes, else its first ClipLen/2 bytes (cut at a character boundary)
// quoted and how long it was. Unlike Clip(fmt.Sprintf("%q", s)) it costs
// nothing for a 20 MiB s.
func QuoteClip(s string) string {
	if len(s) <= quoteLen {
		return strconv.Quote(s)
	}
	cut := quoteLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", strconv.Quote(s[:cut]), len(s))
}

// NameText returns a shard's name (a file name or a Redis key) for a
// message: as it is (clipped, see Clip) when it is valid UTF-8 without
// control characters, else quoted as %q does (clipped, see QuoteClip),
// so that a key holding bytes that are not UTF-8 or a file name holding
// a newline neither garbles the line nor loses its bytes: the quoted form
// ("app\xff:counter:...") can be given to redis-cli as it is.
func NameText(s string) string {
	if !utf8.ValidString(s) {
		return QuoteClip(s)
	}
	for _, r := range s {
		if IsControl(r) {
			return QuoteClip(s)
		}
	}
	return Clip(s)
}

// IsControl reports whether r is a control character: C0, DEL or C1.
func IsControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)
}
