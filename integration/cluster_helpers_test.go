package integration

import (
	nb "encoding/binary"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ntpServer is a tiny SNTP server (RFC 4330) on a loopback UDP port whose
// clock runs offset ahead of this machine's: the members measure their
// offset against it.
type ntpServer struct {
	addr   string
	offset atomic.Int64 // nanoseconds
	pause  atomic.Bool  // while true it does not answer
	conn   net.PacketConn
}

func startNTP(t *testing.T) *ntpServer {
	t.Helper()
	return startNTPOn(t, "127.0.0.1")
}

// startNTPOn is startNTP on a port of ip.
func startNTPOn(t *testing.T, ip string) *ntpServer {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &ntpServer{addr: c.LocalAddr().String(), conn: c}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 || s.pause.Load() {
				continue
			}
			now := time.Now().Add(time.Duration(s.offset.Load()))
			var r [48]byte
			r[0] = 0<<6 | 4<<3 | 4 // LI 0, version 4, mode 4 (server)
			r[1] = 1               // stratum 1
			r[2] = buf[2]
			r[3] = 0xEC // precision ~ 2^-20 s
			copy(r[12:16], "LOCL")
			putNTPTime(r[16:24], now.Add(-time.Second)) // reference time
			copy(r[24:32], buf[40:48])                  // origin = client's transmit
			putNTPTime(r[32:40], now)                   // receive
			putNTPTime(r[40:48], now)                   // transmit
			c.WriteTo(r[:], from)
		}
	}()
	return s
}

func putNTPTime(b []byte, t time.Time) {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	nb.BigEndian.PutUint32(b[0:4], uint32(secs))
	nb.BigEndian.PutUint32(b[4:8], uint32(frac))
}

// clusterStatus is the part of `postern cluster status --json` the tests read.
type clusterStatus struct {
	Member      bool   `json:"member"`
	DeviceID    string `json:"device_id"`
	UUID        string `json:"uuid"`
	ClusterNo   int    `json:"cluster_no"`
	ClusterUUID string `json:"cluster_uuid"`
	Members     []struct {
		DeviceID         string `json:"device_id"`
		IP, Port, Status string
		Version          string
		OK               bool
		Self             bool
		State            string `json:"state"`
	} `json:"members"`
	Setup []struct {
		DeviceID  string `json:"device_id"`
		UUID      string `json:"uuid"`
		ClusterNo string `json:"cluster_no"`
		Hostname  string `json:"hostname"`
		IP, Port  string
		Comment   string `json:"comment"`
		Location  string `json:"location"`
		Version   string `json:"version"`
		Parity    string `json:"parity"`
	} `json:"setup"`
	Replication []struct {
		DeviceID   string `json:"device_id"`
		ClusterNo  int    `json:"cluster_no"`
		ContextCSN string `json:"context_csn"`
		Self       bool   `json:"self"`
	} `json:"replication"`
	LastChange string `json:"last_change"`
	NTP        struct {
		Server        string  `json:"server"`
		OffsetMS      float64 `json:"offset_ms"`
		Error         string  `json:"error"`
		WritesRefused bool    `json:"writes_refused"`
	} `json:"ntp"`
}

func (a *appliance) clusterStatus(t *testing.T) clusterStatus {
	t.Helper()
	out, err := a.cli("cluster", "status", "--json")
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	var st clusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	return st
}

func (a *appliance) deviceID(t *testing.T) string {
	t.Helper()
	return a.clusterStatus(t).DeviceID
}

// writePassword writes the cluster password file.
func writePassword(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// eventually retries f until it returns "" or the time is up.
func eventually(t *testing.T, within time.Duration, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %s", what, within, last)
}

func hasLine(out, sub string) bool { return strings.Contains(out, sub) }

// startSSH runs ssh in the background; the returned func stops it.
func startSSH(t *testing.T, bin string, args ...string) func() {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	time.Sleep(1500 * time.Millisecond) // let it connect and bind the local port
	return func() {
		cmd.Process.Kill()
		<-done
	}
}

// readForwarded connects to a local forwarded port and returns what comes
// back within a second (nothing when the tunnel was refused).
func readForwarded(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 256)
	n, _ := c.Read(b)
	return string(b[:n])
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

// clusterFixture starts appliances that share one NTP server, a fast
// heartbeat and one cluster password, and forms clusters of them.
type clusterFixture struct {
	t      *testing.T
	ntp    *ntpServer
	common []string
	pw     string
}

func newClusterFixture(t *testing.T) *clusterFixture {
	t.Helper()
	return newClusterFixtureOn(t, "127.0.0.1")
}

// newClusterFixtureOn is newClusterFixture with its NTP server on ntpIP.
func newClusterFixtureOn(t *testing.T, ntpIP string) *clusterFixture {
	t.Helper()
	ntp := startNTPOn(t, ntpIP)
	return &clusterFixture{t: t, ntp: ntp, common: []string{"--ntp-server", ntp.addr, "--heartbeat", "1s"}, pw: writePassword(t, "correct horse battery")}
}

// start starts an appliance on ip with the fixture's options.
// Every appliance gets a hostname of its own (a cluster refuses a second
// member of the same name).
func (f *clusterFixture) start(ip string, env ...string) *appliance {
	f.t.Helper()
	return startApplianceEnv(f.t, ip, env, append(f.common, "--hostname", "m"+strings.ReplaceAll(ip, ".", "-"))...)
}

// prepare runs `cluster prepare` on x, allowing the given IPs, and returns
// the identifier's path.
func (f *clusterFixture) prepare(x *appliance, allow ...string) string {
	f.t.Helper()
	idFile := filepath.Join(f.t.TempDir(), "clusterid.txt")
	args := []string{"cluster", "prepare", "--password-file", f.pw, "--out", idFile}
	if len(allow) > 0 {
		args = append(args, "--allow", strings.Join(allow, ","))
	}
	if out, err := x.cli(args...); err != nil {
		f.t.Fatalf("prepare on %s: %v\n%s", x.ip, err, out)
	}
	return idFile
}

// join runs `cluster join` on x through member via with the identifier idFile.
func (f *clusterFixture) join(x, via *appliance, idFile string) (string, error) {
	return x.cli("cluster", "join", "--id", idFile, "--password-file", f.pw, "--member", via.addr["cluster"], "--self", x.addr["cluster"])
}
