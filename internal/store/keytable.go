package store

// KeyTable holds a value for each key met, by the key's ID (dense among a
// store's keys: a slice index, no hashing), the key itself checked so
// that a key of another store with the same ID is not taken for it. Keys
// without an ID, or with one past maxKeyTableID, are not kept: Get finds
// nothing for them. The zero value is empty and ready to use.
type KeyTable[V any] struct {
	slots []keySlot[V]
}

type keySlot[V any] struct {
	key *Key
	v   V
}

// maxKeyTableID bounds the IDs a KeyTable keeps values for.
const maxKeyTableID = 1 << 24

// Get returns the value kept for key k of ID id (k.ID, which a caller
// holding an Entry passes as its KeyID, without loading the key).
func (t *KeyTable[V]) Get(id uint32, k *Key) (V, bool) {
	if int(id) < len(t.slots) && id != 0 {
		if s := &t.slots[id]; s.key == k {
			return s.v, true
		}
	}
	var zero V
	return zero, false
}

// Put keeps v for key k of ID id (none for an ID of 0 or too large).
func (t *KeyTable[V]) Put(id uint32, k *Key, v V) {
	i := int(id)
	if i == 0 || i >= maxKeyTableID {
		return
	}
	if i >= len(t.slots) {
		t.slots = append(t.slots, make([]keySlot[V], i+1-len(t.slots)+len(t.slots)/2)...)
	}
	t.slots[i] = keySlot[V]{k, v}
}
