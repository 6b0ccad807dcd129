package inventory

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Entry is one object as an inventory saw it: which object of the data model, its target id, its
// key, and one hash per managed attribute (shape.props order; 0 means absent). Values (the
// managed attributes as JSON) and Seq (read order, to keep the latest of duplicates) only travel
// through a run's scratch files; snapshots keep neither.
type Entry struct {
	Object uint8
	ID     string
	Key    string // canonical JSON of the key: {"userName":"ada@example.com"}
	Hashes []uint64
	Values []byte
	Seq    uint64
}

// less orders entries by object, then id: the order of snapshots.
func (e *Entry) less(o *Entry) bool {
	if e.Object != o.Object {
		return e.Object < o.Object
	}
	return e.ID < o.ID
}

func (e *Entry) same(o *Entry) bool { return e.Object == o.Object && e.ID == o.ID }

// size approximates the memory the entry holds.
func (e *Entry) size() int { return 96 + len(e.ID) + len(e.Key) + 8*len(e.Hashes) + len(e.Values) }

// maxField bounds one field of an encoded entry, so that a damaged file cannot make the reader
// allocate without limit.
const maxField = 64 << 20

// encodeEntry appends the binary form of e: object, then id, key, hashes and values with
// uvarint lengths, then seq.
func encodeEntry(b []byte, e *Entry) []byte {
	b = append(b, e.Object)
	b = binary.AppendUvarint(b, uint64(len(e.ID)))
	b = append(b, e.ID...)
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	b = binary.AppendUvarint(b, uint64(len(e.Hashes)))
	for _, h := range e.Hashes {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Values)))
	b = append(b, e.Values...)
	return binary.AppendUvarint(b, e.Seq)
}

// entryReader decodes entries from a stream written by encodeEntry.
type entryReader struct {
	r *bufio.Reader
}

func newEntryReader(r io.Reader) *entryReader {
	return &entryReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next reads one entry; io.EOF at a clean end.
func (er *entryReader) next() (Entry, error) {
	var e Entry
	obj, err := er.r.ReadByte()
	if err != nil {
		return e, err // io.EOF at a clean end
	}
	e.Object = obj
	field := func() ([]byte, error) {
		n, err := binary.ReadUvarint(er.r)
		if err != nil {
			return nil, unexpected(err)
		}
		if n > maxField {
			return nil, fmt.Errorf("snapshot entry field of %d bytes: the file is damaged", n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(er.r, b); err != nil {
			return nil, unexpected(err)
		}
		return b, nil
	}
	id, err := field()
	if err != nil {
		return e, err
	}
	key, err := field()
	if err != nil {
		return e, err
	}
	e.ID, e.Key = string(id), string(key)
	n, err := binary.ReadUvarint(er.r)
	if err != nil {
		return e, unexpected(err)
	}
	if n > 4096 {
		return e, fmt.Errorf("snapshot entry with %d hashes: the file is damaged", n)
	}
	e.Hashes = make([]uint64, n)
	var h [8]byte
	for i := range e.Hashes {
		if _, err := io.ReadFull(er.r, h[:]); err != nil {
			return e, unexpected(err)
		}
		e.Hashes[i] = binary.LittleEndian.Uint64(h[:])
	}
	if e.Values, err = field(); err != nil {
		return e, err
	}
	if len(e.Values) == 0 {
		e.Values = nil
	}
	if e.Seq, err = binary.ReadUvarint(er.r); err != nil {
		return e, unexpected(err)
	}
	return e, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
