package store

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// EncodeKey returns the key text Python's
// json.dumps([family, name, labels, help], sort_keys=True) produces: the text
// whose MD5 addresses a sample in the Redis store. Labels are sorted by
// name here; the slice is not modified.
func EncodeKey(family, name string, labels []Label, help string) string {
	var b strings.Builder
	b.Grow(len(family) + len(name) + len(help) + 16*len(labels) + 16)
	b.WriteByte('[')
	writeJSONString(&b, family)
	b.WriteString(", ")
	writeJSONString(&b, name)
	b.WriteString(", {")
	sorted := labels
	if !sort.SliceIsSorted(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name }) {
		sorted = append([]Label(nil), labels...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	}
	for i, l := range sorted {
		if i > 0 {
			b.WriteString(", ")
		}
		writeJSONString(&b, l.Name)
		b.WriteString(": ")
		writeJSONString(&b, l.Value)
	}
	b.WriteString("}, ")
	writeJSONString(&b, help)
	b.WriteByte(']')
	return b.String()
}

// CanonicalKeyText returns the 4-element key text for k: k.Text itself
// when it already is a 4-element key, else the re-encoding Python would
// write for it (legacy keys get help LegacyHelp).
func CanonicalKeyText(k *Key) string {
	if !k.Legacy {
		return k.Text
	}
	return EncodeKey(k.Family, k.Name, k.Labels, k.Help)
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as Python's json.dumps(ensure_ascii=True) does.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		// Python's ensure_ascii escapes everything outside ' '..'~', so
		// DEL (0x7f) is escaped too.
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		b.WriteString(s[start:i])
		if c < 0x80 {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				writeU(b, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			writeU(b, r1)
			writeU(b, r2)
		} else {
			// Invalid UTF-8 decodes to U+FFFD, which is what Python's
			// decoder would have substituted when reading such bytes.
			writeU(b, r)
		}
		i += size
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

func writeU(b *strings.Builder, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[(r>>12)&0xf])
	b.WriteByte(hexDigits[(r>>8)&0xf])
	b.WriteByte(hexDigits[(r>>4)&0xf])
	b.WriteByte(hexDigits[r&0xf])
}

// ParseKey parses a sample key: a JSON list of family, sample name, label
// object and (since prometheus_client 0.16) help text. The returned Key's
// Text is text itself.
func ParseKey(text string) (*Key, error) {
	// The key and room for its first labels in one allocation.
	ka := &struct {
		k  Key
		ls [4]Label
	}{}
	if err := parseKey(&ka.k, text, ka.ls[:0]); err != nil {
		return nil, err
	}
	return &ka.k, nil
}

// KeyArena parses keys into blocks: a key and exactly its labels cost no
// allocation of their own, where ParseKey makes one of 224 bytes (a store's
// first read parses every key it holds). A block lives as long as one of
// its keys. The zero value is ready to use; an arena is not safe for
// concurrent use.
type KeyArena struct {
	keys    []Key
	labels  []Label
	scratch []Label
}

// Blocks of a KeyArena: 64 keys (6 KiB), 256 labels (8 KiB).
const (
	keyBlock   = 64
	labelBlock = 256
)

// Parse is ParseKey, into the arena.
func (a *KeyArena) Parse(text string) (*Key, error) {
	var k Key
	err := parseKey(&k, text, a.scratch[:0])
	a.scratch = k.Labels[:0]
	if err != nil {
		return nil, err
	}
	if n := len(k.Labels); n > 0 {
		if cap(a.labels)-len(a.labels) < n {
			if n > labelBlock/4 {
				a.labels = make([]Label, 0, n)
			} else {
				a.labels = make([]Label, 0, labelBlock)
			}
		}
		start := len(a.labels)
		a.labels = append(a.labels, k.Labels...)
		k.Labels = a.labels[start:len(a.labels):len(a.labels)]
	} else {
		k.Labels = []Label{} // as ParseKey's: empty, not nil
	}
	if len(a.keys) == cap(a.keys) {
		a.keys = make([]Key, 0, keyBlock)
	}
	a.keys = append(a.keys, k)
	return &a.keys[len(a.keys)-1], nil
}

// parseKey parses text into k, its labels appended to ls.
func parseKey(k *Key, text string, ls []Label) error {
	p := keyParser{s: text}
	k.Text = text
	k.Labels = ls
	p.ws()
	if !p.eat('[') {
		return p.fail("key does not start with '['")
	}
	var err error
	if k.Family, err = p.str(); err != nil {
		return err
	}
	if !p.comma() {
		return p.fail("expected ',' after metric name")
	}
	if k.Name, err = p.str(); err != nil {
		return err
	}
	if !p.comma() {
		return p.fail("expected ',' after sample name")
	}
	p.ws()
	if !p.eat('{') {
		return p.fail("expected label object")
	}
	p.ws()
	if !p.eat('}') {
		for {
			var l Label
			if l.Name, err = p.str(); err != nil {
				return err
			}
			p.ws()
			if !p.eat(':') {
				return p.fail("expected ':' in label object")
			}
			if l.Value, err = p.str(); err != nil {
				return err
			}
			k.Labels = addLabel(k.Labels, l)
			p.ws()
			if p.eat('}') {
				break
			}
			if !p.eat(',') {
				return p.fail("expected ',' or '}' in label object")
			}
		}
	}
	p.ws()
	switch {
	case p.eat(']'):
		k.Legacy = true
		k.Help = LegacyHelp
	case p.eat(','):
		if k.Help, err = p.str(); err != nil {
			return err
		}
		p.ws()
		if !p.eat(']') {
			return p.fail("expected ']' after help text")
		}
	default:
		return p.fail("expected ',' or ']' after labels")
	}
	p.ws()
	if p.i != len(p.s) {
		return p.fail("trailing data after key")
	}
	if k.Family == "" || k.Name == "" {
		return errors.New("invalid key: empty metric or sample name")
	}
	return nil
}

// addLabel appends l, replacing an earlier label of the same name as
// Python's dict would.
func addLabel(ls []Label, l Label) []Label {
	for i := range ls {
		if ls[i].Name == l.Name {
			ls[i].Value = l.Value
			return ls
		}
	}
	return append(ls, l)
}

type keyParser struct {
	s string
	i int
}

func (p *keyParser) fail(msg string) error {
	return fmt.Errorf("invalid key at byte %d: %s", p.i, msg)
}

func (p *keyParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *keyParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *keyParser) comma() bool {
	p.ws()
	return p.eat(',')
}

// str parses a JSON string, decoding escapes (surrogate pairs joined, lone
// surrogates replaced by U+FFFD).
func (p *keyParser) str() (string, error) {
	p.ws()
	if !p.eat('"') {
		return "", p.fail("expected string")
	}
	start := p.i
	// Fast path: no escapes up to the closing quote, found at SIMD speed.
	if q := strings.IndexByte(p.s[start:], '"'); q >= 0 {
		seg := p.s[start : start+q]
		if strings.IndexByte(seg, '\\') < 0 && !hasControl(seg) {
			p.i = start + q + 1
			if !utf8.ValidString(seg) {
				return "", p.fail("string is not valid UTF-8")
			}
			return seg, nil
		}
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			out := p.s[start:p.i]
			p.i++
			if !utf8.ValidString(out) {
				return "", p.fail("string is not valid UTF-8")
			}
			return out, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.fail("control character in string")
		}
		p.i++
	}
	var b strings.Builder
	b.WriteString(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			out := b.String()
			if !utf8.ValidString(out) {
				return "", p.fail("string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.s) {
			break
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 && strings.HasPrefix(p.s[p.i:], `\u`) {
					save := p.i
					p.i += 2
					if r2, ok := p.hex4(); ok && r2 >= 0xdc00 && r2 < 0xe000 {
						r = utf16.DecodeRune(r, r2)
					} else {
						p.i = save
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
		default:
			return "", p.fail(fmt.Sprintf("bad escape \\%c", e))
		}
	}
	return "", p.fail("unterminated string")
}

func (p *keyParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	v, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// hasControl reports whether s holds a byte below 0x20, which JSON
// strings must escape. Eight bytes at a time: a word has a byte below n
// (n <= 128) exactly when (w - n*0x01..01) & ^w & 0x80..80 is not zero.
func hasControl(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if (w-0x20*ones)&^w&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}
