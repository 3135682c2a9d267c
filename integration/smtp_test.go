package integration

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func swaks(t *testing.T, a *appliance, args ...string) (string, error) {
	t.Helper()
	return tool(t, nil, "", "swaks", append([]string{"--server", a.addr["smtp"], "--timeout", "20", "--helo", "client.test"}, args...)...)
}

// TestMailThroughAppliance: the policy set with the CLI is stored in LDAP
// and the gateway applies it at once; mail sent with swaks reaches the
// delivery server; the queue CLI shows and manages what is waiting.
func TestMailThroughAppliance(t *testing.T) {
	a := startAppliance(t, "127.0.0.7")
	dst := startSink(t, "127.0.0.7")

	// No managed domain yet: mail for example.com is relaying, refused.
	out, _ := swaks(t, a, "--from", "sender@remote.test", "--to", "alice@example.com")
	if !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("relay attempt not refused with 554 5.7.1:\n%s", out)
	}
	out, err := a.cli("domain", "add", "example.com", "--deliver-to", dst.addr, "--tls", "may")
	if err != nil || !strings.Contains(out, "domain example.com delivers to "+dst.addr) {
		t.Fatalf("domain add: %v\n%s", err, out)
	}
	// The policy is an LDAP entry that ldapsearch sees.
	ld := mustTool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", a.ldapURL(), "-D", adminDN, "-w", adminPassword, "-b", "ou=domains,"+suffix, "(cn=example.com)", "posternDeliverTo")
	if !strings.Contains(ld, "posternDeliverTo: "+dst.addr) {
		t.Fatalf("domain entry:\n%s", ld)
	}
	// A domain without users accepts any address, and the reply carries the queue ID.
	out, err = swaks(t, a, "--from", "sender@remote.test", "--to", "anyone@example.com", "--header", "Subject: first", "--body", "hello one")
	if err != nil || !regexp.MustCompile(`250 2\.0\.0 \S*.*queued as \S+`).MatchString(out) {
		t.Fatalf("first message: %v\n%s", err, out)
	}
	got := dst.wait(t, 1, 30*time.Second)
	if got[0].To[0] != "anyone@example.com" || !strings.Contains(got[0].Data, "hello one") || !strings.HasPrefix(got[0].Data, "Received: ") {
		t.Fatalf("delivered message: %+v", got[0])
	}

	// With a user in the domain, unknown addresses get 550 5.1.1.
	mustTool(t, nil, "dn: uid=alice,ou=people,"+suffix+"\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice\nsn: A\nmail: alice@example.com\n",
		"ldapadd", "-x", "-H", a.ldapURL(), "-D", adminDN, "-w", adminPassword)
	time.Sleep(2500 * time.Millisecond) // the "domain has users" cache lives 2 s
	out, _ = swaks(t, a, "--from", "sender@remote.test", "--to", "nobody@example.com")
	if !strings.Contains(out, "550 5.1.1") {
		t.Fatalf("unknown user not refused with 550 5.1.1:\n%s", out)
	}
	// STARTTLS with the machine certificate and pipelining.
	out, err = swaks(t, a, "--from", "sender@remote.test", "--to", "ALICE@example.com", "--tls", "--pipeline", "--body", "over tls")
	if err != nil || !strings.Contains(out, "TLS started") || !strings.Contains(out, "queued as") {
		t.Fatalf("STARTTLS + pipelining: %v\n%s", err, out)
	}
	dst.wait(t, 2, 30*time.Second)

	// Relaying: allowed from the relay networks, through the smarthost.
	if out, err := a.cli("relay", "networks", "127.0.0.0/8"); err != nil {
		t.Fatalf("relay networks: %v\n%s", err, out)
	}
	if out, err := a.cli("relay", "smarthost", dst.addr); err != nil || !strings.Contains(out, dst.addr) {
		t.Fatalf("relay smarthost: %v\n%s", err, out)
	}
	out, err = swaks(t, a, "--from", "alice@example.com", "--to", "friend@elsewhere.test", "--body", "relayed")
	if err != nil || !strings.Contains(out, "queued as") {
		t.Fatalf("relay from relay network: %v\n%s", err, out)
	}
	got = dst.wait(t, 3, 30*time.Second)
	if got[2].To[0] != "friend@elsewhere.test" {
		t.Fatalf("relayed message: %+v", got[2])
	}

	// A domain whose server is down: the message waits in the queue.
	if out, err := a.cli("domain", "add", "down.test", "--deliver-to", freePort(t, "127.0.0.7")); err != nil {
		t.Fatalf("domain add: %v\n%s", err, out)
	}
	out, err = swaks(t, a, "--from", "alice@example.com", "--to", "x@down.test")
	m := regexp.MustCompile(`queued as (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("message to down.test: %v\n%s", err, out)
	}
	id := m[1]
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err = a.cli("queue", "list")
		if err == nil && strings.Contains(out, id) && strings.Contains(out, "deferred") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue list does not show %s deferred: %v\n%s", id, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err = a.cli("queue", "show", id)
	if err != nil || !strings.Contains(out, "x@down.test") || !strings.Contains(out, "Received: ") {
		t.Fatalf("queue show: %v\n%s", err, out)
	}
	if out, err := a.cli("queue", "flush"); err != nil || !strings.Contains(out, "scheduled") {
		t.Fatalf("queue flush: %v\n%s", err, out)
	}
	if out, err := a.cli("queue", "delete", id); err != nil {
		t.Fatalf("queue delete: %v\n%s", err, out)
	}
	out, err = a.cli("queue", "show", id)
	if exitCode(err) != 1 || !strings.Contains(out, "no queued message") {
		t.Fatalf("show of a deleted message: exit %d\n%s", exitCode(err), out)
	}

	// Removing the domain applies at once: mail for it is relaying again,
	// and 127.0.0.7 is in the relay networks, so close them first.
	if out, err := a.cli("relay", "networks", "none"); err != nil || !strings.Contains(out, "no relaying") {
		t.Fatalf("relay networks none: %v\n%s", err, out)
	}
	if out, err := a.cli("domain", "remove", "example.com"); err != nil {
		t.Fatalf("domain remove: %v\n%s", err, out)
	}
	out, _ = swaks(t, a, "--from", "sender@remote.test", "--to", "alice@example.com")
	if !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("removed domain still accepted:\n%s", out)
	}
	out, err = a.cli("domain", "list")
	if err != nil || strings.Contains(out, "example.com") || !strings.Contains(out, "down.test") {
		t.Fatalf("domain list: %v\n%s", err, out)
	}

	resp, err := http.Get("http://" + a.addr["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"postern_smtp_messages_received_total 4", "postern_smtp_messages_delivered_total 3"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
