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
	clusterOK := fs.Bool("cluster-ok", false, "wait until every row of the Cluster members table says OK")
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
		if err == nil && *clusterOK {
			err = allOK(ctx, c)
		}
		if err == nil {
			fmt.Fprintf(stdout, "appliance %s is up (data in %s)", st.DeviceID, *data)
			if *clusterOK {
				fmt.Fprint(stdout, "; every member OK")
			}
			fmt.Fprintln(stdout)
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

// allOK returns an error naming the first member row that is not OK.
func allOK(ctx context.Context, c *client) error {
	var st cluster.Status
	if err := c.call(ctx, "GET", "/v1/cluster/status", nil, &st); err != nil {
		return err
	}
	if !st.Member {
		return fmt.Errorf("not a cluster member")
	}
	for _, m := range st.Members {
		if !m.OK {
			return fmt.Errorf("%s: %s", m.DeviceID, m.Status)
		}
	}
	return nil
}

// cmdStop is `postern stop`: the appliance shuts down as on SIGTERM, and
// the command returns once it has.
func cmdStop(ctx context.Context, args []string, stdout io.Writer) error {
	fs, data, _ := clientFlags("stop")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the appliance to stop")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	c := newClient(*data)
	var st StatusReport
	if err := c.call(ctx, "GET", "/v1/status", nil, &st); err != nil {
		return err
	}
	if err := c.call(ctx, "POST", "/v1/stop", nil, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		// stopped once its data directory lock is free
		if free, err := lockFree(*data); err == nil && free {
			fmt.Fprintf(stdout, "appliance %s stopped\n", st.DeviceID)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("appliance %s still running after %s", st.DeviceID, *timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
