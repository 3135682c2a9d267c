package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireSink is a next hop that records each transaction as it was on the
// wire: the command lines exactly as sent and the DATA section with its
// dot-stuffing and line ends. It offers only the EHLO keywords it is given,
// so tests can take SMTPUTF8, 8BITMIME or DSN away from the gateway.
type wireSink struct {
	addr string
	ext  []string
	l    net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex
	txs    []wireTx
	reject func(rcptLine string) string // reply for a RCPT line; "" = 250
	refuse string                       // reply for MAIL; "" = 250
}

// wireTx is one transaction received by a wireSink.
type wireTx struct {
	Mail  string   // the MAIL line, without CRLF
	Rcpts []string // the accepted RCPT lines, without CRLF
	Wire  []byte   // after 354, up to and including the ".\r\n" line
}

func startWireSink(t testing.TB, ip string, ext ...string) *wireSink {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &wireSink{addr: l.Addr().String(), ext: ext, l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.wg.Wait()
	})
	return s
}

func (s *wireSink) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	say := func(lines ...string) { c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n")) }
	say("220 wire.test ESMTP")
	var tx wireTx
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		verb := strings.ToUpper(line[:min(4, len(line))])
		switch verb {
		case "EHLO":
			out := []string{"250-wire.test"}
			for _, e := range s.ext {
				out = append(out, "250-"+e)
			}
			out[len(out)-1] = "250 " + out[len(out)-1][4:]
			if len(s.ext) == 0 {
				out[0] = "250 wire.test"
			}
			say(out...)
		case "MAIL":
			tx = wireTx{Mail: line}
			s.mu.Lock()
			refuse := s.refuse
			s.mu.Unlock()
			if refuse != "" {
				say(refuse)
				continue
			}
			say("250 2.1.0 Ok")
		case "RCPT":
			s.mu.Lock()
			rej := s.reject
			s.mu.Unlock()
			if rej != nil {
				if reply := rej(line); reply != "" {
					say(reply)
					continue
				}
			}
			tx.Rcpts = append(tx.Rcpts, line)
			say("250 2.1.5 Ok")
		case "DATA":
			say("354 End data with <CR><LF>.<CR><LF>")
			var wire []byte
			for {
				l, err := r.ReadBytes('\n')
				wire = append(wire, l...)
				if err != nil {
					return
				}
				if bytes.Equal(wire, []byte(".\r\n")) || bytes.HasSuffix(wire, []byte("\r\n.\r\n")) {
					break
				}
			}
			tx.Wire = wire
			s.mu.Lock()
			s.txs = append(s.txs, tx)
			s.mu.Unlock()
			say("250 2.0.0 Ok: queued")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		case "RSET", "NOOP", "HELO":
			say("250 2.0.0 Ok")
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}

func (s *wireSink) transactions() []wireTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wireTx(nil), s.txs...)
}

func (s *wireSink) waitFor(t testing.TB, n int, timeout time.Duration) []wireTx {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if txs := s.transactions(); len(txs) >= n {
			return txs
		}
		if time.Now().After(deadline) {
			t.Fatalf("wire sink got %d transactions, want %d", len(s.transactions()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkWire reports how a DATA section breaks RFC 5321 §2.3.8 and §4.5.2:
// a bare CR or LF, a line over 1000 octets with its CRLF, a "." line before
// the end, an end other than CRLF "." CRLF. It returns the message content
// with the dot-stuffing removed.
func checkWire(wire []byte) (content []byte, err error) {
	for i, c := range wire {
		if c == '\r' && (i+1 >= len(wire) || wire[i+1] != '\n') {
			return nil, fmt.Errorf("bare CR at %d: %q", i, around(wire, i))
		}
		if c == '\n' && (i == 0 || wire[i-1] != '\r') {
			return nil, fmt.Errorf("bare LF at %d: %q", i, around(wire, i))
		}
	}
	lines := strings.SplitAfter(string(wire), "\r\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 || lines[len(lines)-1] != ".\r\n" {
		return nil, fmt.Errorf("does not end with CRLF.CRLF: %q", around(wire, len(wire)-1))
	}
	var b bytes.Buffer
	for i, l := range lines[:len(lines)-1] {
		if len(l) > 1000 {
			return nil, fmt.Errorf("line %d has %d octets", i+1, len(l))
		}
		if l == ".\r\n" {
			return nil, fmt.Errorf("line %d ends the data early", i+1)
		}
		b.WriteString(strings.TrimPrefix(l, "."))
	}
	return b.Bytes(), nil
}

func around(b []byte, i int) []byte { return b[max(0, i-20):min(len(b), i+20)] }
