package replication

import (
	"bytes"
	"errors"
	"fmt"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// OIDs of RFC 4533 §2.
const (
	OIDSyncRequest = "1.3.6.1.4.1.4203.1.9.1.1" // §2.2 control
	OIDSyncState   = "1.3.6.1.4.1.4203.1.9.1.2" // §2.3 control
	OIDSyncDone    = "1.3.6.1.4.1.4203.1.9.1.3" // §2.4 control
	OIDSyncInfo    = "1.3.6.1.4.1.4203.1.9.1.4" // §2.5 intermediate response name
)

// Mode is the mode of a Sync Request (RFC 4533 §2.2).
type Mode int

// Sync Request modes; 0 and 2 are unused/reserved.
const (
	ModeRefreshOnly       Mode = 1
	ModeRefreshAndPersist Mode = 3
)

// State is the state of a Sync State control (RFC 4533 §2.3).
type State int

// Sync states.
const (
	StatePresent State = 0
	StateAdd     State = 1
	StateModify  State = 2
	StateDelete  State = 3
)

// InfoKind is the choice of a syncInfoValue (RFC 4533 §2.5).
type InfoKind int

// syncInfoValue choices, numbered by their context tags.
const (
	InfoNewCookie      InfoKind = 0
	InfoRefreshDelete  InfoKind = 1
	InfoRefreshPresent InfoKind = 2
	InfoSyncIDSet      InfoKind = 3
)

// ErrControl is wrapped by every decoding failure of a sync control.
var ErrControl = errors.New("replication: malformed sync control")

// SyncRequest is the value of the Sync Request control (RFC 4533 §2.2):
//
//	syncRequestValue ::= SEQUENCE {
//	    mode ENUMERATED { refreshOnly (1), refreshAndPersist (3) },
//	    cookie     syncCookie OPTIONAL,
//	    reloadHint BOOLEAN DEFAULT FALSE }
type SyncRequest struct {
	Mode       Mode
	Cookie     []byte // nil: absent
	ReloadHint bool
}

// SyncState is the value of the Sync State control (RFC 4533 §2.3):
//
//	syncStateValue ::= SEQUENCE {
//	    state ENUMERATED { present (0), add (1), modify (2), delete (3) },
//	    entryUUID syncUUID,   -- OCTET STRING (SIZE(16))
//	    cookie    syncCookie OPTIONAL }
type SyncState struct {
	State     State
	EntryUUID [16]byte
	Cookie    []byte
}

// SyncDone is the value of the Sync Done control (RFC 4533 §2.4):
//
//	syncDoneValue ::= SEQUENCE {
//	    cookie          syncCookie OPTIONAL,
//	    refreshDeletes  BOOLEAN DEFAULT FALSE }
type SyncDone struct {
	Cookie         []byte
	RefreshDeletes bool
}

// SyncInfo is a syncInfoValue (RFC 4533 §2.5), the value of an
// IntermediateResponse named OIDSyncInfo:
//
//	syncInfoValue ::= CHOICE {
//	    newcookie      [0] syncCookie,
//	    refreshDelete  [1] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
//	    refreshPresent [2] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
//	    syncIdSet      [3] SEQUENCE { cookie OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE,
//	                                  syncUUIDs SET OF syncUUID } }
type SyncInfo struct {
	Kind           InfoKind
	Cookie         []byte
	RefreshDone    bool       // refreshDelete, refreshPresent
	RefreshDeletes bool       // syncIdSet
	UUIDs          [][16]byte // syncIdSet
}

func seq() *ber.Packet {
	return ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
}

func octets(b []byte) *ber.Packet {
	return ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(b), "")
}

func boolean(v bool) *ber.Packet {
	return ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, v, "")
}

func enumerated(v int) *ber.Packet {
	return ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(v), "")
}

// Encode returns the control value's BER.
func (r SyncRequest) Encode() []byte {
	p := seq()
	p.AppendChild(enumerated(int(r.Mode)))
	if r.Cookie != nil {
		p.AppendChild(octets(r.Cookie))
	}
	if r.ReloadHint {
		p.AppendChild(boolean(true))
	}
	return p.Bytes()
}

// Encode returns the control value's BER.
func (s SyncState) Encode() []byte {
	p := seq()
	p.AppendChild(enumerated(int(s.State)))
	p.AppendChild(octets(s.EntryUUID[:]))
	if s.Cookie != nil {
		p.AppendChild(octets(s.Cookie))
	}
	return p.Bytes()
}

// Encode returns the control value's BER (DEFAULT values omitted, X.690 §11.5).
func (d SyncDone) Encode() []byte {
	p := seq()
	if d.Cookie != nil {
		p.AppendChild(octets(d.Cookie))
	}
	if d.RefreshDeletes {
		p.AppendChild(boolean(true))
	}
	return p.Bytes()
}

// Encode returns the intermediate response value's BER.
func (i SyncInfo) Encode() []byte {
	if i.Kind == InfoNewCookie {
		return ber.NewString(ber.ClassContext, ber.TypePrimitive, ber.Tag(InfoNewCookie), string(i.Cookie), "").Bytes()
	}
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, ber.Tag(i.Kind), nil, "")
	if i.Cookie != nil {
		p.AppendChild(octets(i.Cookie))
	}
	switch i.Kind {
	case InfoRefreshDelete, InfoRefreshPresent:
		if !i.RefreshDone {
			p.AppendChild(boolean(false))
		}
	case InfoSyncIDSet:
		if i.RefreshDeletes {
			p.AppendChild(boolean(true))
		}
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, u := range i.UUIDs {
			set.AppendChild(octets(u[:]))
		}
		p.AppendChild(set)
	}
	return p.Bytes()
}

// decode parses exactly one BER value.
func decode(b []byte) (*ber.Packet, error) {
	r := bytes.NewReader(b)
	p, err := ber.ReadPacket(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: trailing data", ErrControl)
	}
	return p, nil
}

func isUniversal(p *ber.Packet, tag ber.Tag, constructed bool) bool {
	want := ber.TypePrimitive
	if constructed {
		want = ber.TypeConstructed
	}
	return p.ClassType == ber.ClassUniversal && p.Tag == tag && p.TagType == want
}

func parseEnum(p *ber.Packet) (int, error) {
	if !isUniversal(p, ber.TagEnumerated, false) {
		return 0, fmt.Errorf("%w: want ENUMERATED", ErrControl)
	}
	v, err := ber.ParseInt64(p.Data.Bytes())
	if err != nil || v < 0 || v > 1<<20 {
		return 0, fmt.Errorf("%w: bad ENUMERATED", ErrControl)
	}
	return int(v), nil
}

func parseBool(p *ber.Packet) (bool, error) {
	b := p.Data.Bytes()
	if len(b) != 1 {
		return false, fmt.Errorf("%w: bad BOOLEAN", ErrControl)
	}
	return b[0] != 0, nil
}

func octetBytes(p *ber.Packet) []byte { return append([]byte{}, p.Data.Bytes()...) }

// optionalTail parses "cookie OPTIONAL, flag BOOLEAN DEFAULT def" from
// children; rest are the children after them.
func optionalTail(children []*ber.Packet, def bool) (cookie []byte, flag bool, rest []*ber.Packet, err error) {
	flag = def
	i := 0
	if i < len(children) && isUniversal(children[i], ber.TagOctetString, false) {
		cookie = octetBytes(children[i])
		i++
	}
	if i < len(children) && isUniversal(children[i], ber.TagBoolean, false) {
		if flag, err = parseBool(children[i]); err != nil {
			return nil, false, nil, err
		}
		i++
	}
	return cookie, flag, children[i:], nil
}

// DecodeSyncRequest parses a Sync Request control value (RFC 4533 §2.2).
func DecodeSyncRequest(b []byte) (SyncRequest, error) {
	var r SyncRequest
	p, err := decode(b)
	if err != nil {
		return r, err
	}
	if !isUniversal(p, ber.TagSequence, true) || len(p.Children) == 0 {
		return r, fmt.Errorf("%w: syncRequestValue is not a SEQUENCE", ErrControl)
	}
	m, err := parseEnum(p.Children[0])
	if err != nil {
		return r, err
	}
	if Mode(m) != ModeRefreshOnly && Mode(m) != ModeRefreshAndPersist {
		return r, fmt.Errorf("%w: mode %d", ErrControl, m)
	}
	r.Mode = Mode(m)
	var rest []*ber.Packet
	if r.Cookie, r.ReloadHint, rest, err = optionalTail(p.Children[1:], false); err != nil {
		return r, err
	}
	if len(rest) != 0 {
		return r, fmt.Errorf("%w: extra elements in syncRequestValue", ErrControl)
	}
	return r, nil
}

// DecodeSyncState parses a Sync State control value (RFC 4533 §2.3).
func DecodeSyncState(b []byte) (SyncState, error) {
	var s SyncState
	p, err := decode(b)
	if err != nil {
		return s, err
	}
	if !isUniversal(p, ber.TagSequence, true) || len(p.Children) < 2 || len(p.Children) > 3 {
		return s, fmt.Errorf("%w: syncStateValue", ErrControl)
	}
	st, err := parseEnum(p.Children[0])
	if err != nil {
		return s, err
	}
	if st > int(StateDelete) {
		return s, fmt.Errorf("%w: state %d", ErrControl, st)
	}
	s.State = State(st)
	u := p.Children[1]
	if !isUniversal(u, ber.TagOctetString, false) || u.Data.Len() != 16 {
		return s, fmt.Errorf("%w: entryUUID must be 16 octets", ErrControl)
	}
	copy(s.EntryUUID[:], u.Data.Bytes())
	if len(p.Children) == 3 {
		if !isUniversal(p.Children[2], ber.TagOctetString, false) {
			return s, fmt.Errorf("%w: cookie", ErrControl)
		}
		s.Cookie = octetBytes(p.Children[2])
	}
	return s, nil
}

// DecodeSyncDone parses a Sync Done control value (RFC 4533 §2.4).
func DecodeSyncDone(b []byte) (SyncDone, error) {
	var d SyncDone
	p, err := decode(b)
	if err != nil {
		return d, err
	}
	if !isUniversal(p, ber.TagSequence, true) {
		return d, fmt.Errorf("%w: syncDoneValue", ErrControl)
	}
	var rest []*ber.Packet
	if d.Cookie, d.RefreshDeletes, rest, err = optionalTail(p.Children, false); err != nil {
		return d, err
	}
	if len(rest) != 0 {
		return d, fmt.Errorf("%w: extra elements in syncDoneValue", ErrControl)
	}
	return d, nil
}

// DecodeSyncInfo parses a Sync Info message value (RFC 4533 §2.5).
func DecodeSyncInfo(b []byte) (SyncInfo, error) {
	var i SyncInfo
	p, err := decode(b)
	if err != nil {
		return i, err
	}
	if p.ClassType != ber.ClassContext || p.Tag > ber.Tag(InfoSyncIDSet) {
		return i, fmt.Errorf("%w: syncInfoValue choice", ErrControl)
	}
	i.Kind = InfoKind(p.Tag)
	if i.Kind == InfoNewCookie {
		if p.TagType != ber.TypePrimitive {
			return i, fmt.Errorf("%w: newcookie", ErrControl)
		}
		i.Cookie = octetBytes(p)
		return i, nil
	}
	if p.TagType != ber.TypeConstructed {
		return i, fmt.Errorf("%w: syncInfoValue is not constructed", ErrControl)
	}
	var rest []*ber.Packet
	switch i.Kind {
	case InfoRefreshDelete, InfoRefreshPresent:
		if i.Cookie, i.RefreshDone, rest, err = optionalTail(p.Children, true); err != nil {
			return i, err
		}
	case InfoSyncIDSet:
		if i.Cookie, i.RefreshDeletes, rest, err = optionalTail(p.Children, false); err != nil {
			return i, err
		}
		if len(rest) != 1 || !isUniversal(rest[0], ber.TagSet, true) {
			return i, fmt.Errorf("%w: syncUUIDs", ErrControl)
		}
		for _, u := range rest[0].Children {
			if !isUniversal(u, ber.TagOctetString, false) || u.Data.Len() != 16 {
				return i, fmt.Errorf("%w: syncUUID must be 16 octets", ErrControl)
			}
			var id [16]byte
			copy(id[:], u.Data.Bytes())
			i.UUIDs = append(i.UUIDs, id)
		}
		rest = nil
	}
	if len(rest) != 0 {
		return i, fmt.Errorf("%w: extra elements in syncInfoValue", ErrControl)
	}
	return i, nil
}
