package verifier

// maxInlineID is the longest id an idTable keeps in its slots; longer
// ones go in a map. The server's ids are 22 bytes.
const maxInlineID = 32

// idTable maps the ids of a RevocationSet (session, token, user and key
// ids) to values of type V. An id of up to maxInlineID bytes is kept in
// a slot of an open-addressing table, bytes and all, so that looking it
// up reads one slot and its neighbours, usually one cache line or two
// adjacent ones; a map[string]V reads its slot and then, elsewhere, the
// string's bytes, one cache miss more at a million entries. Longer ids
// go in a map.
//
// Callers pass the id's 64-bit hash, which a RevocationSet also uses for
// its filter; the table keeps its upper 32 bits in the slot (tag) to
// find a slot's home again when it grows or deletes, without the seed.
// The zero value is an empty table. It is not safe for concurrent use.
type idTable[V any] struct {
	slots []idSlot[V] // linear probing; a slot's home is fastrange(tag)
	used  int         // slots in use
	long  map[string]V
}

type idSlot[V any] struct {
	n   uint8  // the id's length; 0: the slot is empty (ids are never empty)
	tag uint32 // the upper 32 bits of the id's hash
	id  [maxInlineID]byte
	v   V
}

// The load an idTable grows at, and the load it is sized for when it is
// made for a known number of ids (newIDTable): with linear probing, an
// id held is found in 1.5 to 3 probes on average, and each probe reads
// the next slot, usually in a cache line already fetched.
const (
	idTableMaxLoadNum, idTableMaxLoadDen = 4, 5 // 0.8
	idTableFillNum, idTableFillDen       = 2, 3 // 0.67
)

// newIDTable returns a table with room for n ids of up to maxInlineID
// bytes before it grows.
func newIDTable[V any](n int) idTable[V] {
	if n == 0 {
		return idTable[V]{}
	}
	return idTable[V]{slots: make([]idSlot[V], n*idTableFillDen/idTableFillNum+1)}
}

// home returns the slot where probing for a tag begins.
func (t *idTable[V]) home(tag uint32) int {
	return int(uint64(tag) * uint64(len(t.slots)) >> 32)
}

// find returns the index of the slot holding v, whose hash is h, or of
// the empty slot where it would go, and whether v is there. The table
// has slots, at least one of them empty.
func (t *idTable[V]) find(h uint64, v string) (int, bool) {
	tag := uint32(h >> 32)
	i := t.home(tag)
	for {
		s := &t.slots[i]
		if s.n == 0 {
			return i, false
		}
		if s.tag == tag && int(s.n) == len(v) && string(s.id[:len(v)]) == v {
			return i, true
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// get returns the value of v, whose hash is h, and whether the table
// holds it. It does not allocate.
func (t *idTable[V]) get(h uint64, v string) (V, bool) {
	if len(v) > maxInlineID {
		x, ok := t.long[v]
		return x, ok
	}
	if t.used == 0 {
		var zero V
		return zero, false
	}
	i, ok := t.find(h, v)
	return t.slots[i].v, ok
}

// put sets the value of v, whose hash is h, to x, or to merge(old, x)
// when the table holds v already. v is not empty.
func (t *idTable[V]) put(h uint64, v string, x V, merge func(old, x V) V) {
	if len(v) > maxInlineID {
		if t.long == nil {
			t.long = make(map[string]V)
		}
		if old, ok := t.long[v]; ok {
			x = merge(old, x)
		}
		t.long[v] = x
		return
	}
	if (t.used+1)*idTableMaxLoadDen > len(t.slots)*idTableMaxLoadNum {
		t.grow()
	}
	i, ok := t.find(h, v)
	s := &t.slots[i]
	if ok {
		s.v = merge(s.v, x)
		return
	}
	s.n, s.tag, s.v = uint8(len(v)), uint32(h>>32), x
	copy(s.id[:], v)
	t.used++
}

// grow moves the slots into a table twice the size (at least 8 slots).
func (t *idTable[V]) grow() {
	old := t.slots
	t.slots = make([]idSlot[V], max(2*len(old), 8))
	for k := range old {
		if old[k].n == 0 {
			continue
		}
		i := t.home(old[k].tag)
		for t.slots[i].n != 0 { // the ids are distinct: no comparison needed
			if i++; i == len(t.slots) {
				i = 0
			}
		}
		t.slots[i] = old[k]
	}
}

// deleteIf deletes v, whose hash is h, if the table holds it and its
// value satisfies expired, and reports whether it did.
func (t *idTable[V]) deleteIf(h uint64, v string, expired func(V) bool) bool {
	if len(v) > maxInlineID {
		if x, ok := t.long[v]; ok && expired(x) {
			delete(t.long, v)
			return true
		}
		return false
	}
	if t.used == 0 {
		return false
	}
	i, ok := t.find(h, v)
	if !ok || !expired(t.slots[i].v) {
		return false
	}
	// Backward-shift deletion: move up each following slot of the run
	// that may sit at i, so that no probe meets a hole before its id.
	j := i
	for {
		if j++; j == len(t.slots) {
			j = 0
		}
		if t.slots[j].n == 0 {
			break
		}
		k := t.home(t.slots[j].tag)
		// The slot at j stays if its home is cyclically in (i, j].
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = idSlot[V]{}
	t.used--
	return true
}

// len returns the number of ids in the table.
func (t *idTable[V]) len() int { return t.used + len(t.long) }

// each calls f with every id in the table and its value; id is only
// valid during the call (for an inline id it is the slot's bytes).
// f must not change the table.
func (t *idTable[V]) each(f func(id []byte, long string, x V)) {
	if t.used > 0 {
		for i := range t.slots {
			if s := &t.slots[i]; s.n != 0 {
				f(s.id[:s.n], "", s.v)
			}
		}
	}
	for v, x := range t.long {
		f(nil, v, x)
	}
}
