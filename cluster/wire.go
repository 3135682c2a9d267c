package cluster

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The control channel (SSH channel type ControlChannel) carries one
// request and its answers: each message is a 4-byte big-endian length and
// that many bytes of JSON. A channel per request keeps requests
// independent (SSH multiplexes them) and the decoder strict.

// ControlChannel is the SSH channel type of the cluster control channel.
const ControlChannel = "postern-control@postern"

// maxMsg bounds one control message (a batch of entries of a join copy).
const maxMsg = 8 << 20

// Message types.
const (
	msgHello     = "hello"     // → hello: who are you (addresses, version, NTP, counts)
	msgHeartbeat = "heartbeat" // → hello: my record, as I see it; answer with yours
	msgLock      = "lock"      // joiner → member (→ coordinator): take the join lock, get a Cluster No.
	msgUnlock    = "unlock"    // release the join lock
	msgJoin      = "join"      // joiner → member: register my record (under the lock)
	msgDump      = "dump"      // → entries…: the replicated tree, in batches
	msgLeave     = "leave"     // member → peer: I am leaving, delete my record
	msgRemoved   = "removed"   // peer → member: you were removed from the cluster
	msgCheck     = "check"     // member → peer: my context CSN; answer with yours, your digests and what I lack
	msgCompare   = "compare"   // member → peer: list your tree (cluster compare) → items…
	msgRekey     = "rekey"     // member (own key, or a cluster key) → peer: this member's new device key
	msgCall      = "call"      // member → peer: run an appliance operation (Config.Call) → ok with Result
	msgAttach    = "attach"    // would-be frontend → backend (cluster key): register my frontend record
	msgDetach    = "detach"    // frontend → backend: delete my record, revoke my key
	msgItems     = "items"
	msgOK        = "ok"
	msgError     = "error"
	msgEntries   = "entries"
)

var knownMsg = map[string]bool{
	msgHello: true, msgHeartbeat: true, msgLock: true, msgUnlock: true, msgJoin: true, msgDump: true,
	msgLeave: true, msgRemoved: true, msgOK: true, msgError: true, msgEntries: true, msgCheck: true,
	msgCompare: true, msgItems: true, msgRekey: true, msgCall: true, msgAttach: true, msgDetach: true,
}

// Message is one control message. Fields beyond Type are used by some
// types only.
type Message struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`

	Member *MemberInfo `json:"member,omitempty"` // hello/heartbeat/join
	Peer   *PeerInfo   `json:"peer,omitempty"`   // hello answers

	Device    string `json:"device,omitempty"`     // lock holder
	Since     string `json:"since,omitempty"`      // lock: RFC 3339
	ClusterNo int    `json:"cluster_no,omitempty"` // lock answer
	Forwarded bool   `json:"forwarded,omitempty"`  // lock/unlock relayed by a member to the coordinator
	Failed    bool   `json:"failed,omitempty"`     // unlock: the join failed after registering; take the record back
	Record    bool   `json:"record,omitempty"`     // a frontend's heartbeat: the receiving backend writes its record

	Check *CheckInfo `json:"check,omitempty"` // check requests and answers

	Op     string          `json:"op,omitempty"`     // call
	Arg    json.RawMessage `json:"arg,omitempty"`    // call
	Result json.RawMessage `json:"result,omitempty"` // call answers

	Compare *CompareRequest `json:"compare,omitempty"` // compare requests
	Items   []CompareItem   `json:"items,omitempty"`   // compare answers

	Entries []WireEntry `json:"entries,omitempty"` // dump answers
	Total   int         `json:"total,omitempty"`
	Context []string    `json:"context,omitempty"` // the last dump answer: the context CSN the dump reflects
	Done    bool        `json:"done,omitempty"`
}

// PeerInfo is what a member says about itself in a hello answer.
type PeerInfo struct {
	DeviceID    string   `json:"device_id"`
	ClusterUUID string   `json:"cluster_uuid,omitempty"`
	ClusterNo   int      `json:"cluster_no,omitempty"`
	Version     string   `json:"version"`
	NTPServer   string   `json:"ntp_server,omitempty"`
	NTPOffsetMS float64  `json:"ntp_offset_ms,omitempty"`
	NTPError    string   `json:"ntp_error,omitempty"`
	NTPMeasured string   `json:"ntp_measured,omitempty"` // RFC 3339: when the offset was measured
	LDAP        string   `json:"ldap,omitempty"`
	SMTP        string   `json:"smtp,omitempty"`
	Entries     int      `json:"entries"`
	ContextCSN  []string `json:"context_csn,omitempty"`
	Time        string   `json:"time"`
	// For joiners only: why their cluster identifier admits nothing ("" if
	// it does), and the members' names and addresses.
	Refusal string        `json:"refusal,omitempty"`
	Members []MemberBrief `json:"members,omitempty"`
	// Removed, in the answer to a revoked key, tells a member that was
	// removed while switched off.
	Removed string `json:"removed,omitempty"`
}

// MemberBrief is a member's Device ID, hostname and cluster address.
type MemberBrief struct {
	DeviceID  string `json:"device_id"`
	Hostname  string `json:"hostname,omitempty"`
	Addr      string `json:"addr,omitempty"`
	ClusterNo int    `json:"cluster_no,omitempty"`
	Role      string `json:"role,omitempty"`
	DeviceKey string `json:"device_key,omitempty"` // public: a frontend pins it as the backend's host key
	// InjectTo is the members this one may inject mail on (a frontend
	// applies it to the backends that inject on it)
	InjectTo []string `json:"inject_to,omitempty"`
}

// WireEntry is one entry of a dump, operational attributes included.
type WireEntry struct {
	DN    string     `json:"dn"`
	Attrs []WireAttr `json:"attrs"`
}

// WireAttr is one attribute of a WireEntry.
type WireAttr struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// ErrBadMessage is returned for a malformed control message.
var ErrBadMessage = errors.New("cluster: malformed control message")

// WriteMessage writes one framed message.
func WriteMessage(w io.Writer, m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxMsg {
		return fmt.Errorf("cluster: control message of %d bytes exceeds %d", len(b), maxMsg)
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

// ReadMessage reads one framed message: the length must be within bounds,
// the JSON one object of known fields, the type known.
func ReadMessage(r io.Reader) (*Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxMsg {
		return nil, fmt.Errorf("%w: length %d", ErrBadMessage, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return decodeMessage(b)
}

func decodeMessage(b []byte) (*Message, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the message", ErrBadMessage)
	}
	if !knownMsg[m.Type] {
		return nil, fmt.Errorf("%w: unknown type %q", ErrBadMessage, m.Type)
	}
	if m.Member != nil {
		if err := m.Member.validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
	}
	return &m, nil
}
