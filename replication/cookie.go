package replication

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"postern/ldapstore/csn"
)

// Cookie is a syncCookie (RFC 4533 §2.1.3, an opaque octet string) in
// OpenLDAP's form "rid=NNN,sid=SSS,csn=CSN;CSN...": the consumer's
// replica ID (decimal), the sender's server ID (hex) and the context CSN
// vector, one CSN per server ID. OpenLDAP 2.5 consumers send
// "rid=001,csn=..." and may add "sid="; unknown fields (such as "delcsn=")
// are ignored.
type Cookie struct {
	RID  int // -1: absent
	SID  int // -1: absent
	CSNs csn.Vector
}

// ErrCookie is wrapped by every cookie parse failure.
var ErrCookie = errors.New("replication: malformed sync cookie")

// maxRID is the largest replica ID (OpenLDAP: rid is 1..999).
const maxRID = 999

// ParseCookie parses a cookie; the empty string is the empty cookie.
func ParseCookie(s string) (Cookie, error) {
	c := Cookie{RID: -1, SID: -1, CSNs: csn.Vector{}}
	if s == "" {
		return c, nil
	}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return c, fmt.Errorf("%w: field %q", ErrCookie, f)
		}
		switch strings.TrimSpace(strings.ToLower(k)) {
		case "rid":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxRID || len(v) > 3 {
				return c, fmt.Errorf("%w: rid %q", ErrCookie, v)
			}
			c.RID = n
		case "sid":
			n, err := strconv.ParseUint(v, 16, 16)
			if err != nil || n > csn.MaxSID || len(v) > 3 {
				return c, fmt.Errorf("%w: sid %q", ErrCookie, v)
			}
			c.SID = int(n)
		case "csn":
			vec, err := csn.ParseVector(v)
			if err != nil {
				return c, fmt.Errorf("%w: csn: %v", ErrCookie, err)
			}
			for _, x := range vec {
				c.CSNs.Update(x)
			}
		}
	}
	return c, nil
}

// String formats c as OpenLDAP does: "rid=%03d,sid=%03x,csn=...".
func (c Cookie) String() string {
	var b strings.Builder
	if c.RID >= 0 {
		fmt.Fprintf(&b, "rid=%03d", c.RID)
	}
	if c.SID >= 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "sid=%03x", c.SID)
	}
	if len(c.CSNs) > 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString("csn=")
		b.WriteString(c.CSNs.String())
	}
	return b.String()
}
