package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"time"
)

// ServeSNTP answers SNTP requests (RFC 4330 §5) on pc with this machine's
// clock until ctx ends: a time source for labs and tests on a machine
// without network access, so that every appliance of a cluster on one
// machine can point --ntp-server at the same server (`postern ntpd`). It
// claims stratum 1 with reference "LOCL"; a production cluster uses real
// NTP servers.
func ServeSNTP(ctx context.Context, pc net.PacketConn, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		// RFC 4330 §5: a client request is mode 3 (or 1); answer only those
		if n < 48 || buf[0]&7 != 3 {
			continue
		}
		t := now()
		var r [48]byte
		vn := buf[0] >> 3 & 7
		if vn < 1 || vn > 4 {
			vn = 4
		}
		r[0] = 0<<6 | vn<<3 | 4 // no leap warning, the client's version, mode 4 (server)
		r[1] = 1                // stratum 1: a reference clock (this machine's)
		r[2] = buf[2]           // poll
		r[3] = 0xEC             // precision ~ 2^-20 s
		copy(r[12:16], "LOCL")
		putNTP(r[16:24], t.Add(-time.Second)) // reference time
		copy(r[24:32], buf[40:48])            // originate = the client's transmit time
		putNTP(r[32:40], t)                   // receive
		putNTP(r[40:48], now())               // transmit
		if _, err := pc.WriteTo(r[:], from); err != nil && ctx.Err() != nil {
			return nil
		}
	}
}

func putNTP(b []byte, t time.Time) {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	binary.BigEndian.PutUint32(b[0:4], uint32(t.Unix()+ntpEpochOffset))
	binary.BigEndian.PutUint32(b[4:8], uint32(uint64(t.Nanosecond())<<32/1e9))
}
