package appliance

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"postern/cluster"
)

// Commands for scripts and labs: `postern wait` (until an appliance
// answers on its control socket) and `postern ntpd` (an SNTP server on
// this machine's clock, for clusters on a machine without network).

// cmdWait is `postern wait [--data DIR] [--timeout D]`.
func cmdWait(ctx context.Context, args []string, stdout io.Writer) error {
	fs, data, _ := clientFlags("wait")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	deadline := time.Now().Add(*timeout)
	c := newClient(*data)
	for {
		var st StatusReport
		err := c.call(ctx, "GET", "/v1/status", nil, &st)
		if err == nil {
			fmt.Fprintf(stdout, "appliance %s is up (data in %s)\n", st.DeviceID, *data)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %v", *timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cmdNTPD is `postern ntpd --listen ADDR`: it serves SNTP until stopped.
func cmdNTPD(ctx context.Context, args []string, stdout io.Writer) error {
	fs, _, _ := clientFlags("ntpd")
	listen := fs.String("listen", "127.0.0.1:10123", "UDP address to answer SNTP on")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "SNTP (this machine's clock, for labs) on %s\n", pc.LocalAddr())
	return cluster.ServeSNTP(ctx, pc, nil)
}
