package replication

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseCookie: any input parses or fails cleanly, and what parses
// survives String and a second parse unchanged.
func FuzzParseCookie(f *testing.F) {
	for _, s := range []string{
		"", "rid=001", "rid=001,csn=20261122003245.123456Z#000000#001#000000",
		"rid=123,sid=00a,csn=20261122003245.123456Z#000000#001#000000;20261122003246.000000Z#000001#002#000000",
		"rid=001,sid=001,delcsn=x,csn=20261122003245.123456Z#000000#001#000000",
		"csn=20261122003245Z#000000#01#000000", "rid=1000", "sid=fff", "rid=,csn=;", "=,=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCookie(s)
		if err != nil {
			return
		}
		c2, err := ParseCookie(c.String())
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", c.String(), s, err)
		}
		if c2.String() != c.String() {
			t.Fatalf("round trip %q → %q", c.String(), c2.String())
		}
	})
}

// FuzzSyncControls feeds the decoders of the Sync Request, State and Done
// controls and of Sync Info messages (RFC 4533 §2.2–2.5): no panics, and
// whatever decodes re-encodes to a value that decodes the same.
func FuzzSyncControls(f *testing.F) {
	u := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, b := range [][]byte{
		SyncRequest{Mode: ModeRefreshAndPersist, Cookie: []byte("rid=001,csn=x"), ReloadHint: true}.Encode(),
		SyncRequest{Mode: ModeRefreshOnly}.Encode(),
		SyncState{State: StateAdd, EntryUUID: u, Cookie: []byte("c")}.Encode(),
		SyncState{State: StateDelete, EntryUUID: u}.Encode(),
		SyncDone{Cookie: []byte("c"), RefreshDeletes: true}.Encode(),
		SyncDone{}.Encode(),
		SyncInfo{Kind: InfoNewCookie, Cookie: []byte("c")}.Encode(),
		SyncInfo{Kind: InfoRefreshDelete, Cookie: []byte("c"), RefreshDone: true}.Encode(),
		SyncInfo{Kind: InfoRefreshPresent, RefreshDone: false}.Encode(),
		SyncInfo{Kind: InfoSyncIDSet, RefreshDeletes: true, UUIDs: [][16]byte{u, u}}.Encode(),
		{0x30, 0x80, 0x00, 0x00}, {0xa3, 0x02, 0x31, 0x00}, {0x30, 0x84, 0xff, 0xff, 0xff, 0xff},
	} {
		for k := range 4 {
			f.Add(k, b)
		}
	}
	f.Fuzz(func(t *testing.T, kind int, b []byte) {
		switch kind & 3 {
		case 0:
			if r, err := DecodeSyncRequest(b); err == nil {
				r2, err := DecodeSyncRequest(r.Encode())
				if err != nil || r2.Mode != r.Mode || r2.ReloadHint != r.ReloadHint || !bytes.Equal(r2.Cookie, r.Cookie) {
					t.Fatalf("sync request %+v → %+v, %v", r, r2, err)
				}
			}
		case 1:
			if s, err := DecodeSyncState(b); err == nil {
				s2, err := DecodeSyncState(s.Encode())
				if err != nil || !reflect.DeepEqual(norm(s2.Cookie), norm(s.Cookie)) || s2.State != s.State || s2.EntryUUID != s.EntryUUID {
					t.Fatalf("sync state %+v → %+v, %v", s, s2, err)
				}
			}
		case 2:
			if d, err := DecodeSyncDone(b); err == nil {
				d2, err := DecodeSyncDone(d.Encode())
				if err != nil || d2.RefreshDeletes != d.RefreshDeletes || !bytes.Equal(d2.Cookie, d.Cookie) {
					t.Fatalf("sync done %+v → %+v, %v", d, d2, err)
				}
			}
		case 3:
			if i, err := DecodeSyncInfo(b); err == nil {
				i2, err := DecodeSyncInfo(i.Encode())
				if err != nil || i2.Kind != i.Kind || i2.RefreshDone != i.RefreshDone || i2.RefreshDeletes != i.RefreshDeletes ||
					!bytes.Equal(i2.Cookie, i.Cookie) || len(i2.UUIDs) != len(i.UUIDs) {
					t.Fatalf("sync info %+v → %+v, %v", i, i2, err)
				}
			}
		}
	})
}

func norm(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// TestSyncControlsRoundTrip checks the encoders against the decoders and
// against go-ldap's (the consumer's) reading of the same bytes.
func TestSyncControlsRoundTrip(t *testing.T) {
	u := [16]byte{0xde, 0xad, 0xbe, 0xef}
	i, err := DecodeSyncInfo(SyncInfo{Kind: InfoSyncIDSet, RefreshDeletes: true, UUIDs: [][16]byte{u}, Cookie: []byte("rid=001")}.Encode())
	if err != nil || !i.RefreshDeletes || len(i.UUIDs) != 1 || i.UUIDs[0] != u || string(i.Cookie) != "rid=001" {
		t.Fatalf("syncIdSet: %+v %v", i, err)
	}
	i, err = DecodeSyncInfo(SyncInfo{Kind: InfoRefreshPresent, RefreshDone: true}.Encode())
	if err != nil || !i.RefreshDone || i.Kind != InfoRefreshPresent {
		t.Fatalf("refreshPresent: %+v %v", i, err)
	}
	if _, err := DecodeSyncState([]byte{0x30, 0x05, 0x0a, 0x01, 0x01, 0x04, 0x00}); err == nil {
		t.Fatal("a 0-octet entryUUID was accepted")
	}
	if _, err := DecodeSyncRequest(SyncRequest{Mode: 2}.Encode()); err == nil {
		t.Fatal("reserved mode 2 was accepted")
	}
}
