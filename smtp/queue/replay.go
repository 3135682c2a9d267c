package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// maxRecord bounds a record's length on replay, so that a corrupt length
// cannot make us allocate without limit.
const maxRecord = 1 << 30

// replay rebuilds the index from the segments in q.dir, oldest first.
func (q *Queue) replay() error {
	names, err := filepath.Glob(filepath.Join(q.dir, "*.seg"))
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	var segs []*segment
	for _, p := range names {
		seq, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), ".seg"), 16, 64)
		if err != nil {
			q.log.Warn("queue: ignoring stray file", slog.String("path", p))
			continue
		}
		segs = append(segs, &segment{seq: seq, path: p})
	}
	slices.SortFunc(segs, func(a, b *segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for i, s := range segs {
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("queue: open segment: %w", err)
		}
		s.f = f
		q.segs = append(q.segs, s)
		if err := q.replaySegment(s, i == len(segs)-1); err != nil {
			return err
		}
	}
	return nil
}

// replaySegment applies the records of s. A bad record ends the segment: at
// the tail of the last segment it is a write that was never acknowledged and
// is cut off; elsewhere it is damage, logged, and the rest of s is skipped.
func (q *Queue) replaySegment(s *segment, last bool) error {
	r := bufio.NewReaderSize(s.f, 1<<20)
	var off int64
	var body []byte
	var hdr [headerSize]byte
	for {
		_, err := io.ReadFull(r, hdr[:])
		if err == io.EOF {
			break
		}
		bad := err != nil
		var n uint32
		if !bad {
			n = binary.LittleEndian.Uint32(hdr[0:])
			bad = n == 0 || n > maxRecord
		}
		if !bad {
			if cap(body) < int(n) {
				body = make([]byte, n)
			}
			body = body[:n]
			if _, err := io.ReadFull(r, body); err != nil {
				bad = true
			} else if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
				bad = true
			}
		}
		if !bad {
			if err := q.replayRecord(s, off, body); err != nil {
				// The checksum holds, so the record is as written: skip it
				// rather than cut the log.
				q.log.Error("queue: undecodable record", slog.String("segment", s.path), slog.Int64("offset", off), slog.String("err", err.Error()))
			}
		}
		if bad {
			if last {
				q.log.Warn("queue: cutting torn tail", slog.String("segment", s.path), slog.Int64("offset", off))
				if err := s.f.Truncate(off); err != nil {
					return fmt.Errorf("queue: truncate %s: %w", s.path, err)
				}
				if err := datasync(s.f); err != nil {
					return fmt.Errorf("queue: sync %s: %w", s.path, err)
				}
			} else {
				q.log.Error("queue: corrupt record, skipping rest of segment", slog.String("segment", s.path), slog.Int64("offset", off))
			}
			break
		}
		off += headerSize + int64(n)
	}
	s.size = off
	return nil
}

func (q *Queue) replayRecord(s *segment, off int64, body []byte) error {
	n := int64(headerSize + len(body))
	switch body[0] {
	case recMessage:
		m, coff, err := decodeMessage(body[1:])
		if err != nil {
			return err
		}
		m.Size = int64(len(body) - 1 - coff)
		e, ok := q.index[m.ID]
		if ok {
			e.release() // an older copy, superseded by this snapshot
		} else {
			e = &entry{}
			q.index[m.ID] = e
		}
		e.msg, e.seg, e.contentOff = m, s, off+headerSize+1+int64(coff)
		e.touch(s, n)
		if m.Done() {
			e.release()
			delete(q.index, m.ID)
		}
	case recUpdate:
		id, ups, err := decodeUpdate(body[1:])
		if err != nil {
			return err
		}
		e, ok := q.index[id]
		if !ok {
			return nil // the message was finished and its segment deleted
		}
		for _, u := range ups {
			if u.Index >= 0 && u.Index < len(e.msg.Recipients) {
				e.msg.Recipients[u.Index] = u.Recipient
			}
		}
		e.touch(s, n)
		if e.msg.Done() {
			e.release()
			delete(q.index, id)
		}
	case recRemove:
		id, err := decodeRemove(body[1:])
		if err != nil {
			return err
		}
		if e, ok := q.index[id]; ok {
			e.release()
			delete(q.index, id)
		}
	default:
		return errors.New("queue: unknown record type")
	}
	return nil
}
