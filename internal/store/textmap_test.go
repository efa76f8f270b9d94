package store

import (
	"strconv"
	"strings"
	"testing"
)

func TestTextMap(t *testing.T) {
	var m TextMap[int]
	texts := []string{"", "a", "b", `["m", "m_total", {}, "h"]`}
	for i := range 5000 {
		texts = append(texts, "key-"+strconv.Itoa(i))
	}
	for i, s := range texts {
		m.Put(HashText(s), s, i)
	}
	m.Put(HashText("a"), "a", -1) // replaces
	if m.Len() != len(texts) {
		t.Fatalf("Len = %d, want %d", m.Len(), len(texts))
	}
	for i, s := range texts {
		want := i
		if s == "a" {
			want = -1
		}
		if v, ok := m.Get(HashText(s), s); !ok || v != want {
			t.Fatalf("Get(%q) = %v, %v", s, v, ok)
		}
		if v, ok := m.GetBytes(HashBytes([]byte(s)), []byte(s)); !ok || v != want {
			t.Fatalf("GetBytes(%q) = %v, %v", s, v, ok)
		}
	}
	if _, ok := m.Get(HashText("missing"), "missing"); ok {
		t.Error("Get of a missing text succeeded")
	}
	// Texts whose hashes collide (forced here) are told apart.
	var c TextMap[string]
	c.Put(7, "x", "X")
	c.Put(7, "y", "Y")
	if v, _ := c.Get(7, "x"); v != "X" {
		t.Errorf("collision: Get(x) = %q", v)
	}
	if v, _ := c.Get(7, "y"); v != "Y" {
		t.Errorf("collision: Get(y) = %q", v)
	}
	if _, ok := c.Get(7, "z"); ok || c.Len() != 2 {
		t.Errorf("collision: z found or Len %d", c.Len())
	}
	// Replacing the value of each text of a chain, and a third text.
	c.Put(7, "x", "X2")
	c.Put(7, "y", "Y2")
	c.Put(7, "z", "Z")
	c.Put(7, "x", "X3")
	for text, want := range map[string]string{"x": "X3", "y": "Y2", "z": "Z"} {
		if v, ok := c.Get(7, text); !ok || v != want {
			t.Errorf("collision chain: Get(%s) = %q, %v; want %q", text, v, ok, want)
		}
		if v, ok := c.GetBytes(7, []byte(text)); !ok || v != want {
			t.Errorf("collision chain: GetBytes(%s) = %q, %v; want %q", text, v, ok, want)
		}
		if v, ok := c.GetFunc(7, func(s string) bool { return s == text }); !ok || v != want {
			t.Errorf("collision chain: GetFunc(%s) = %q, %v; want %q", text, v, ok, want)
		}
	}
	if _, ok := c.GetFunc(7, func(string) bool { return false }); ok {
		t.Error("GetFunc found a text eq refused")
	}
	if c.Len() != 3 {
		t.Errorf("collision chain: Len %d, want 3", c.Len())
	}
}

// TestTextHasher: a text hashed in pieces has the hash of the whole text,
// however it is cut, and a hasher used again starts afresh.
func TestTextHasher(t *testing.T) {
	texts := []string{"", "a", "method\xfeGET\xfd", strings.Repeat("route/\xfe", 100)}
	var h TextHasher
	for _, text := range texts {
		for cut := range len(text) + 1 {
			h.Reset()
			h.WriteString(text[:cut])
			if cut < len(text) {
				_ = h.WriteByte(text[cut])
				h.WriteString(text[cut+1:])
			}
			if got, want := h.Sum(), HashText(text); got != want {
				t.Fatalf("%q cut at %d: %x, HashText %x", text, cut, got, want)
			}
		}
	}
	var fresh TextHasher
	fresh.Reset()
	if fresh.Sum() != HashText("") {
		t.Error("a new hasher's empty text does not hash as HashText(\"\")")
	}
}
