package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestMessageRoundTrip and the decoder's refusals.
func TestMessageRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	m := &Message{Type: msgJoin, Member: &MemberInfo{DeviceID: "PST-0123456789", UUID: "6f0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3", Addr: "192.0.2.1:22"}}
	if err := WriteMessage(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMessage(&buf)
	if err != nil || got.Type != msgJoin || got.Member.Addr != "192.0.2.1:22" {
		t.Fatalf("got %+v, %v", got, err)
	}
	frame := func(s string) *bytes.Reader {
		b := make([]byte, 4+len(s))
		binary.BigEndian.PutUint32(b, uint32(len(s)))
		copy(b[4:], s)
		return bytes.NewReader(b)
	}
	for name, in := range map[string]*bytes.Reader{
		"unknown type":   frame(`{"type":"shell"}`),
		"unknown field":  frame(`{"type":"hello","exec":"id"}`),
		"two objects":    frame(`{"type":"hello"}{"type":"hello"}`),
		"bad device":     frame(`{"type":"join","member":{"device_id":"../x","uuid":"6f0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"}}`),
		"zero length":    bytes.NewReader([]byte{0, 0, 0, 0}),
		"huge length":    bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}),
		"short body":     bytes.NewReader([]byte{0, 0, 0, 9, '{'}),
		"not json":       frame(`hello`),
		"bad member key": frame(`{"type":"join","member":{"device_id":"PST-1","uuid":"6f0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3","device_key":"ssh-rsa !!"}}`),
	} {
		if _, err := ReadMessage(in); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// FuzzReadMessage: no input panics; what decodes encodes and decodes
// again.
func FuzzReadMessage(f *testing.F) {
	for _, m := range []*Message{{Type: msgHello}, {Type: msgLock, Device: "PST-1", Forwarded: true},
		{Type: msgEntries, Entries: []WireEntry{{DN: "cn=x", Attrs: []WireAttr{{Name: "cn", Values: []string{"x"}}}}}, Total: 1, Done: true}} {
		var b bytes.Buffer
		WriteMessage(&b, m)
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadMessage(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteMessage(&out, m); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadMessage(&out); err != nil {
			t.Fatalf("re-read: %v", err)
		}
	})
}
