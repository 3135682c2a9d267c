package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// slapdPair is two stock slapd multi-provider nodes: back_mdb, syncprov,
// serverID, and syncrepl refreshAndPersist to each other.
type slapdPair struct {
	dir, bin   string
	a, b       *exec.Cmd
	aAddr, bAd string
}

func (p *slapdPair) name() string  { return "slapd" }
func (p *slapdPair) addrA() string { return p.aAddr }
func (p *slapdPair) addrB() string { return p.bAd }

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (p *slapdPair) conf(node string, sid int, peer string) (string, error) {
	dir := filepath.Join(p.dir, node)
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
serverID %[2]d
database mdb
maxsize 4294967296
suffix "%[3]s"
rootdn "%[4]s"
rootpw "%[5]s"
directory %[1]s/db
index objectClass,entryUUID,entryCSN,uid,description eq
limits dn.exact="%[4]s" size=unlimited time=unlimited
syncrepl rid=00%[2]d provider=ldap://%[6]s bindmethod=simple binddn="%[4]s" credentials="%[5]s"
  searchbase="%[3]s" type=refreshAndPersist retry="1 +" scope=sub attrs="*,+"
multiprovider on
overlay syncprov
syncprov-checkpoint 100 1
syncprov-sessionlog 100000
`, dir, sid, suffix, rootDN, rootPW, peer)
	f := filepath.Join(dir, "slapd.conf")
	return f, os.WriteFile(f, []byte(conf), 0o600)
}

func (p *slapdPair) start(node string, sid int, addr, peer string) (*exec.Cmd, error) {
	conf, err := p.conf(node, sid, peer)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.bin, "-f", conf, "-h", "ldap://"+addr+"/", "-d", "0")
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
	return nil, fmt.Errorf("slapd %s did not start (see %s)", node, conf)
}

func (p *slapdPair) startA() error {
	var err error
	if p.aAddr, err = freeAddr(); err != nil {
		return err
	}
	if p.bAd, err = freeAddr(); err != nil {
		return err
	}
	p.a, err = p.start("a", 1, p.aAddr, p.bAd)
	return err
}

func (p *slapdPair) startB() error {
	var err error
	p.b, err = p.start("b", 2, p.bAd, p.aAddr)
	return err
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

func (p *slapdPair) stopB() error {
	stopProc(p.b)
	p.b = nil
	return nil
}

func (p *slapdPair) close() {
	stopProc(p.b)
	stopProc(p.a)
	p.a, p.b = nil, nil
}
