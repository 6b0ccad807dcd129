package cyberarksim

// memberList is the ordered set of member ids of a Group: adding, removing and testing a member
// are O(1) whatever the group's size, and members list in the order they were added.
type memberList struct {
	ids   []string       // insertion order; "" where a member was removed
	index map[string]int // id → position in ids
}

func newMemberList() *memberList {
	return &memberList{index: map[string]int{}}
}

func (m *memberList) len() int { return len(m.index) }

func (m *memberList) has(id string) bool {
	_, ok := m.index[id]
	return ok
}

// add appends id; it reports false when id was already a member.
func (m *memberList) add(id string) bool {
	if m.has(id) {
		return false
	}
	m.index[id] = len(m.ids)
	m.ids = append(m.ids, id)
	return true
}

// remove deletes id; it reports false when id was not a member.
func (m *memberList) remove(id string) bool {
	i, ok := m.index[id]
	if !ok {
		return false
	}
	delete(m.index, id)
	m.ids[i] = ""
	if holes := len(m.ids) - len(m.index); holes > 64 && holes > len(m.index) {
		m.compact()
	}
	return true
}

// list returns the member ids in insertion order.
func (m *memberList) list() []string {
	out := make([]string, 0, len(m.index))
	for _, id := range m.ids {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

func (m *memberList) compact() {
	kept := m.ids[:0]
	for _, id := range m.ids {
		if id != "" {
			m.index[id] = len(kept)
			kept = append(kept, id)
		}
	}
	clear(m.ids[len(kept):])
	m.ids = kept
}
