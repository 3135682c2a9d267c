package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// procPair is two server processes, A and B, replicating with each other
// (a Postern pair or a slapd pair: only launch differs).
type procPair struct {
	sys string
	// launch starts node "a" or "b" with its server ID, listening on addr,
	// replicating from peer, and returns once it accepts connections.
	launch       func(node string, sid int, addr, peer string) (*exec.Cmd, error)
	a, b         *exec.Cmd
	aAddr, bAddr string
}

func (p *procPair) name() string  { return p.sys }
func (p *procPair) addrA() string { return p.aAddr }
func (p *procPair) addrB() string { return p.bAddr }

func (p *procPair) startA() error {
	var err error
	if p.aAddr, err = freeAddr(); err != nil {
		return err
	}
	if p.bAddr, err = freeAddr(); err != nil {
		return err
	}
	p.a, err = p.launch("a", 1, p.aAddr, p.bAddr)
	return err
}

func (p *procPair) startB() error {
	var err error
	p.b, err = p.launch("b", 2, p.bAddr, p.aAddr)
	return err
}

func (p *procPair) stopB() error {
	stopProc(p.b)
	p.b = nil
	return nil
}

func (p *procPair) close() {
	stopProc(p.b)
	stopProc(p.a)
	p.a, p.b = nil, nil
}

// phase tells both members that a measure starts or ends (their CPU
// profiles, REPLBENCH_CPUPROFILE, go to a new file); slapd is not told.
func (p *procPair) phase() {
	if p.sys != "postern" || os.Getenv("REPLBENCH_CPUPROFILE") == "" {
		return
	}
	for _, c := range []*exec.Cmd{p.a, p.b} {
		if c != nil {
			c.Process.Signal(syscall.SIGUSR1)
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startProc starts cmd and waits up to 15 s for addr to accept connections;
// what names the process in the error (it is killed then).
func startProc(cmd *exec.Cmd, addr, what string) (*exec.Cmd, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("%s did not start", what)
}

// stopProc stops a server process started here: SIGINT, then SIGKILL after 20 s.
func stopProc(c *exec.Cmd) {
	if c == nil {
		return
	}
	c.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.Process.Kill()
		<-done
	}
}
