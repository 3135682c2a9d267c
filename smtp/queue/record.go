package queue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"
)

// On-disk record framing, little endian:
//
//	uint32 length of (type + payload)
//	uint32 CRC-32C of (type + payload)
//	byte   type
//	payload
//
// A message record's payload is uvarint(len(envelope)) envelope content, so
// the content can be read back in place with one ReadAt.
const headerSize = 8

const (
	recMessage byte = 1 // envelope + recipient states + content (new message or copy-forward snapshot)
	recUpdate  byte = 2 // recipient state changes of one message
	recRemove  byte = 3 // message removed by an operator
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errCorrupt = errors.New("queue: corrupt record")

// frame appends a framed record to dst; body is type + payload.
func frame(dst, body []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(body, castagnoli))
	dst = append(dst, h[:]...)
	return append(dst, body...)
}

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)   { e.b = append(e.b, v) }
func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.int(0)
		return
	}
	e.int(t.UnixNano())
}

func (e *encoder) recipient(r *Recipient) {
	e.str(r.Addr)
	e.str(r.ORcpt)
	e.byte(byte(r.Notify))
	e.byte(byte(r.Status))
	e.uint(uint64(r.Attempts))
	e.time(r.NextAttempt)
	e.time(r.LastAttempt)
	e.str(r.Diagnostic)
	e.str(r.Enhanced)
	e.str(r.RemoteMTA)
}

func (e *encoder) envelope(m *Message) {
	e.str(m.ID)
	e.time(m.Arrival)
	e.str(m.From)
	e.str(m.EnvID)
	e.str(m.Ret)
	if m.UTF8 {
		e.byte(1)
	} else {
		e.byte(0)
	}
	e.str(m.Body)
	e.str(m.Client)
	e.uint(uint64(len(m.Recipients)))
	for i := range m.Recipients {
		e.recipient(&m.Recipients[i])
	}
}

// encodeMessage returns the record body (type + payload) and the offset of the
// content within it.
func encodeMessage(m *Message, content []byte) (body []byte, contentOff int) {
	var env encoder
	env.envelope(m)
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(env.b)+len(content))
	b = append(b, recMessage)
	b = binary.AppendUvarint(b, uint64(len(env.b)))
	b = append(b, env.b...)
	contentOff = len(b)
	return append(b, content...), contentOff
}

func encodeUpdate(id string, ups []RecipientUpdate) []byte {
	e := encoder{b: []byte{recUpdate}}
	e.str(id)
	e.uint(uint64(len(ups)))
	for i := range ups {
		e.uint(uint64(ups[i].Index))
		e.recipient(&ups[i].Recipient)
	}
	return e.b
}

func encodeRemove(id string) []byte {
	e := encoder{b: []byte{recRemove}}
	e.str(id)
	return e.b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errCorrupt; d.b = nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	v := d.int()
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

func (d *decoder) recipient() Recipient {
	return Recipient{
		Addr:        d.str(),
		ORcpt:       d.str(),
		Notify:      Notify(d.byte()),
		Status:      Status(d.byte()),
		Attempts:    int(d.uint()),
		NextAttempt: d.time(),
		LastAttempt: d.time(),
		Diagnostic:  d.str(),
		Enhanced:    d.str(),
		RemoteMTA:   d.str(),
	}
}

func (d *decoder) envelope() *Message {
	m := &Message{
		ID:      d.str(),
		Arrival: d.time(),
		From:    d.str(),
		EnvID:   d.str(),
		Ret:     d.str(),
		UTF8:    d.byte() == 1,
		Body:    d.str(),
		Client:  d.str(),
	}
	n := d.uint()
	if n > uint64(len(d.b)) { // every recipient takes at least one byte
		d.fail()
		return m
	}
	m.Recipients = make([]Recipient, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		m.Recipients = append(m.Recipients, d.recipient())
	}
	return m
}

// decodeMessage parses a message record payload (after the type byte); it
// returns the envelope and the offset of the content within the payload.
func decodeMessage(p []byte) (*Message, int, error) {
	d := decoder{b: p}
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, 0, errCorrupt
	}
	envStart := len(p) - len(d.b)
	ed := decoder{b: d.b[:n]}
	m := ed.envelope()
	if ed.err != nil || len(ed.b) != 0 {
		return nil, 0, errCorrupt
	}
	return m, envStart + int(n), nil
}

func decodeUpdate(p []byte) (string, []RecipientUpdate, error) {
	d := decoder{b: p}
	id := d.str()
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)) {
		return "", nil, errCorrupt
	}
	ups := make([]RecipientUpdate, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		idx := int(d.uint())
		ups = append(ups, RecipientUpdate{Index: idx, Recipient: d.recipient()})
	}
	if d.err != nil || len(d.b) != 0 {
		return "", nil, errCorrupt
	}
	return id, ups, nil
}

func decodeRemove(p []byte) (string, error) {
	d := decoder{b: p}
	id := d.str()
	if d.err != nil || len(d.b) != 0 {
		return "", errCorrupt
	}
	return id, nil
}
