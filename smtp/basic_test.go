package smtp

import (
	"strings"
	"testing"
	"time"
)

func TestDeliverToManagedDomain(t *testing.T) {
	sink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("example.com", sink.addr, TLSMay)
	gw := startGateway(t, fastConfig(t, dir))

	body := "Subject: hi\r\nFrom: a@remote.test\r\n\r\nhello\r\n.leading dot\r\n"
	reply, err := sendMail(t, gw.addr, "a@remote.test", []string{"bob@example.com"}, body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(reply, "2.0.0 Ok: queued as ") {
		t.Fatalf("reply %q", reply)
	}
	msgs := sink.waitFor(t, 1, 10*time.Second)
	m := msgs[0]
	if m.From != "a@remote.test" || len(m.To) != 1 || m.To[0] != "bob@example.com" {
		t.Fatalf("envelope %+v", m)
	}
	if got := string(stripReceived(t, m.Data)); got != body {
		t.Fatalf("body %q, want %q", got, body)
	}
	if !strings.Contains(string(m.Data), "id "+queueID(reply)) {
		t.Fatalf("Received lacks queue id: %q", m.Data)
	}
	deadline := time.Now().Add(5 * time.Second)
	for gw.q.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if gw.q.Len() != 0 {
		t.Fatal("delivered message still queued")
	}
}
