package store

import "testing"

// TestKeyTable: a value is found for the key it was kept for and no
// other: not another key of the same ID, not a key without an ID or of
// an ID too large to keep.
func TestKeyTable(t *testing.T) {
	a, b := &Key{ID: 3}, &Key{ID: 3} // two stores' keys of one ID
	far, none := &Key{ID: maxKeyTableID}, &Key{}
	var tab KeyTable[string]
	tests := []struct {
		name  string
		put   *Key
		get   *Key
		want  string
		found bool
	}{
		{"nothing kept yet", nil, a, "", false},
		{"kept", a, a, "a", true},
		{"another key of the ID", nil, b, "", false},
		{"the other key takes the slot", b, b, "b", true},
		{"the first key is not taken for it", nil, a, "", false},
		{"an ID too large", far, far, "", false},
		{"no ID", none, none, "", false},
	}
	for _, tt := range tests {
		if tt.put != nil {
			tab.Put(tt.put.ID, tt.put, map[*Key]string{a: "a", b: "b", far: "far", none: "none"}[tt.put])
		}
		if got, ok := tab.Get(tt.get.ID, tt.get); got != tt.want || ok != tt.found {
			t.Errorf("%s: Get = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.found)
		}
	}
}
