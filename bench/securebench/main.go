// Command securebench measures the cost of secure mail (issue 15,
// Benchmark): messages per second through Postern's SMTP gateway, end to
// end (accepted, queued with fsync, processed, delivered to a sink), for
// plain relaying, S/MIME encryption to one recipient and S/MIME signing,
// with the same 10 KB message, and prints the cost as a ratio to the plain
// relay. Everything listens on 127.0.0.1 ports the kernel picks; it stops
// what it started.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"postern/smtp"
	"postern/smtp/secure"
)

// staticDir routes every recipient domain to the sink and lets the client
// relay.
type staticDir struct{ sink string }

func (s staticDir) Domain(_ context.Context, name string) (smtp.Domain, bool, error) {
	return smtp.Domain{Name: name, DeliverTo: s.sink, TLS: smtp.TLSNone}, name == "partner.test", nil
}
func (staticDir) HasUsers(context.Context, string) (bool, error)   { return false, nil }
func (staticDir) UserExists(context.Context, string) (bool, error) { return false, nil }
func (staticDir) Relay(context.Context) (smtp.RelayPolicy, error)  { return smtp.RelayPolicy{}, nil }

// keys: the sender's domain internal.test is managed, partner.test is not;
// one S/MIME key each.
type keys struct {
	pol                 secure.Policy
	senderPriv, rcptPub secure.PrivateKey
}

func (k *keys) Managed(_ context.Context, d string) (bool, error) { return d == "internal.test", nil }
func (k *keys) Policy(context.Context, string) (secure.Policy, error) {
	return k.pol, nil
}
func (k *keys) Public(_ context.Context, a string) ([]secure.PublicKey, error) {
	if strings.HasSuffix(a, "@partner.test") {
		return []secure.PublicKey{{Owner: a, Kind: secure.KindSMIME, Data: k.rcptPub.Cert}}, nil
	}
	return nil, nil
}
func (k *keys) Private(_ context.Context, a string) ([]secure.PrivateKey, error) {
	if strings.HasSuffix(a, "@internal.test") {
		return []secure.PrivateKey{k.senderPriv}, nil
	}
	return nil, nil
}
func (k *keys) DKIM(context.Context, string) (secure.PrivateKey, bool, error) {
	return secure.PrivateKey{}, false, nil
}
func (k *keys) Roots(context.Context) ([][]byte, error)       { return nil, nil }
func (k *keys) Collect(context.Context, string, []byte) error { return nil }

// sink counts delivered messages.
type sink struct{ n atomic.Int64 }

func (s *sink) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return sess{s}, nil }

type sess struct{ s *sink }

func (sess) Reset()                                 {}
func (sess) Logout() error                          { return nil }
func (sess) Mail(string, *gosmtp.MailOptions) error { return nil }
func (sess) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (x sess) Data(r io.Reader) error               { io.Copy(io.Discard, r); x.s.n.Add(1); return nil }

func newKey(owner string) secure.PrivateKey {
	cert, key, err := secure.NewSMIME(owner, secure.AlgoRSA3072, nil, time.Now())
	if err != nil {
		panic(err)
	}
	return secure.PrivateKey{Owner: owner, Kind: secure.KindSMIME, Fingerprint: secure.Fingerprint(cert), Cert: cert, Key: key}
}

func message(size int) string {
	b := make([]byte, size*3/4)
	rand.Read(b)
	body := base64.StdEncoding.EncodeToString(b)
	var lines []string
	for len(body) > 76 {
		lines = append(lines, body[:76])
		body = body[76:]
	}
	lines = append(lines, body)
	return "From: <alice@internal.test>\r\nTo: <bob@partner.test>\r\nSubject: bench\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.Join(lines, "\r\n") + "\r\n"
}

func run(mode string, n, sessions int, msg string, k *keys) (float64, error) {
	sk := &sink{}
	srv := gosmtp.NewServer(sk)
	srv.Domain = "sink.test"
	srv.MaxMessageBytes = 64 << 20
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	go srv.Serve(sl)
	defer srv.Close()
	dir, err := os.MkdirTemp("", "securebench")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cfg := smtp.Config{Hostname: "postern.bench", DataDir: dir, Directory: staticDir{sl.Addr().String()}, Logger: slog.New(slog.DiscardHandler)}
	switch mode {
	case "encrypt":
		k.pol = secure.Policy{Encrypt: secure.EncryptAlways, Sign: secure.SignNever, Method: secure.MethodSMIME}
	case "sign":
		k.pol = secure.Policy{Encrypt: secure.EncryptNever, Sign: secure.SignAlways, Method: secure.MethodSMIME}
	}
	if mode != "plain" {
		p, err := secure.New(secure.Config{Keys: k, Hostname: "postern.bench"})
		if err != nil {
			return 0, err
		}
		defer p.Close()
		cfg.Processor = p
	}
	g, err := smtp.New(cfg)
	if err != nil {
		return 0, err
	}
	defer g.Close()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	go g.Serve(gl)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	per := n / sessions
	for s := 0; s < sessions; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := gosmtp.Dial(gl.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := 0; i < per; i++ {
				if err := c.SendMail("alice@internal.test", []string{"bob@partner.test"}, strings.NewReader(msg)); err != nil {
					errs <- err
					return
				}
			}
			c.Quit()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	want := int64(per * sessions)
	deadline := time.Now().Add(10 * time.Minute)
	for sk.n.Load() < want {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: %d of %d delivered in 10 min", mode, sk.n.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return float64(want) / time.Since(start).Seconds(), nil
}

func main() {
	n := flag.Int("n", 2000, "messages per run")
	size := flag.Int("size", 10240, "message size in octets")
	sessions := flag.Int("sessions", 10, "parallel SMTP sessions")
	flag.Parse()
	k := &keys{senderPriv: newKey("alice@internal.test"), rcptPub: newKey("bob@partner.test")}
	msg := message(*size)
	res := map[string]float64{}
	for _, mode := range []string{"plain", "encrypt", "sign"} {
		r, err := run(mode, *n, *sessions, msg, k)
		if err != nil {
			fmt.Fprintln(os.Stderr, "securebench:", err)
			os.Exit(1)
		}
		res[mode] = r
	}
	fmt.Printf("secure mail, %d messages of %d octets over %d sessions, end to end (queued with fsync, processed, delivered):\n", *n, *size, *sessions)
	fmt.Printf("  plain relay                      %8.0f msg/s\n", res["plain"])
	fmt.Printf("  S/MIME encrypt (RSA 3072, AES-256) %6.0f msg/s   %.2fx the plain relay (cost %.1fx)\n", res["encrypt"], res["encrypt"]/res["plain"], res["plain"]/res["encrypt"])
	fmt.Printf("  S/MIME sign (RSA 3072, SHA-256)  %8.0f msg/s   %.2fx the plain relay (cost %.1fx)\n", res["sign"], res["sign"]/res["plain"], res["plain"]/res["sign"])
}
