package server

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// renderEntries renders entries' attributes as sorted "dn: name=v1|v2"
// lines (binary values by length).
func renderEntries(es []*ldap.Entry) string {
	var lines []string
	for _, e := range es {
		for _, a := range e.Attributes {
			v := append([]string(nil), a.Values...)
			for i := range v {
				if strings.ContainsAny(v[i], "\x00\x82") {
					v[i] = fmt.Sprintf("<%d octets>", len(v[i]))
				}
			}
			sort.Strings(v)
			lines = append(lines, strings.ToLower(strings.SplitN(e.DN, ",", 2)[0])+": "+a.Name+"="+strings.Join(v, "|"))
		}
		if len(e.Attributes) == 0 {
			lines = append(lines, strings.ToLower(strings.SplitN(e.DN, ",", 2)[0]))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestAttributeOptionsLikeSlapd (issue 9, item 12): attribute options are
// part of the attribute description (RFC 4512 §2.5): stored, returned,
// matched and compared as such; language tags (RFC 3866) and ";binary"
// (RFC 4522, required by certificates) are supported and other options
// refused. Every answer is compared with slapd's.
func TestAttributeOptionsLikeSlapd(t *testing.T) {
	p := newRefPair(t)
	_, _, caPEM := testCertificates(t)
	blk, _ := pem.Decode(caPEM)
	der := string(blk.Bytes)
	people := ",ou=people," + testSuffix
	p.addBoth(t, entry("uid=greta"+people, "objectClass", "inetOrgPerson", "cn", "Greta", "cn;lang-DE", "Greta Beispiel",
		"sn", "B", "sn;lang-de;lang-fr", "Bei", "displayName", "Greta B", "displayName;lang-de", "Greta Beispiel"))
	p.addBoth(t, entry("uid=cert"+people, "objectClass", "inetOrgPerson", "cn", "C", "sn", "C", "userCertificate;binary", der))
	p.addBoth(t, entry("uid=certde"+people, "objectClass", "inetOrgPerson", "cn", "C", "sn", "C", "userCertificate;lang-de;binary", der))
	same := func(what string, get func(d directory) string) {
		t.Helper()
		got := map[string]string{}
		p.each(func(name string, d directory) { got[name] = get(d) })
		if got["postern"] != got["slapd"] {
			t.Errorf("%s:\npostern:\n%s\nslapd:\n%s", what, got["postern"], got["slapd"])
		} else {
			t.Logf("%s: %s", what, strings.ReplaceAll(got["postern"], "\n", "; "))
		}
	}
	searchRender := func(d directory, filter string, attrs ...string) string {
		res, err := d.root().Search(ldap.NewSearchRequest("ou=people,"+testSuffix, ldap.ScopeSingleLevel, 0, 0, 0, false, filter, attrs, nil))
		if err != nil {
			return "code " + strconv.Itoa(int(code(err)))
		}
		return renderEntries(res.Entries)
	}
	// attribute selection
	for _, attrs := range [][]string{{"cn"}, {"cn;lang-de"}, {"CN;LANG-DE"}, {"sn;lang-fr"}, {"sn;lang-de-"}, {"name"}, {"name;lang-de"},
		{"displayName"}, {"displayName;lang-en"}, {"cn;x-bar"}, {"userCertificate"}, {"userCertificate;binary"}, {"userCertificate;lang-de"}} {
		same(fmt.Sprintf("select %v", attrs), func(d directory) string { return searchRender(d, "(uid=*)", attrs...) })
	}
	// filters
	for _, f := range []string{"(cn;lang-de=greta beispiel)", "(cn;lang-de=greta)", "(cn=greta beispiel)", "(name;lang-de=greta beispiel)",
		"(cn;lang-de=*)", "(sn;lang-de-=*)", "(sn;lang-fr=bei)", "(cn;lang-en=*)", "(cn;x-bar=*)", "(!(cn;x-bar=*))", "(cn;binary=*)",
		"(userCertificate;binary=*)", "(userCertificate;lang-de=*)", "(cn;lang-de=*beisp*)", "(displayName;lang-de=greta beispiel)",
		"(cn;lang-de:caseExactMatch:=Greta Beispiel)", "(cn;lang-de:dn:=greta)"} {
		same("filter "+f, func(d directory) string { return searchRender(d, f, "1.1") })
	}
	// adds: unknown options are undefinedAttributeType, as is a
	// certificate without ";binary"; a MUST type is met with options
	for i, tc := range [][]string{
		{"sn;x-bar", "x"}, {"description;binary", "x"}, {"userCertificate", der}, {"cn;lang-de-", "x"}, {"sn;lang-", "x"},
		{"cn;lang-de", "only tagged"}, {"cn;lang-de", "X", "cn;LANG-DE", "x"},
	} {
		dn := fmt.Sprintf("uid=opt%d%s", i, people)
		attrs := append([]string{"objectClass", "inetOrgPerson", "sn", "O"}, tc...)
		if tc[0] != "cn;lang-de" {
			attrs = append(attrs, "cn", "O")
		}
		same(fmt.Sprintf("add %v", tc), func(d directory) string {
			err := d.root().Add(addReq(dn, attrs...))
			r := "code " + strconv.Itoa(int(code(err)))
			if err == nil {
				r += " " + searchRender(d, "(uid=opt"+strconv.Itoa(i)+")", "cn", "sn")
			}
			return r
		})
	}
	// modifies touch only the description they name
	for _, m := range []struct {
		op   string
		attr string
		vals []string
	}{{"delete", "cn;lang-de", nil}, {"replace", "cn;lang-en", []string{"Greta Example"}}, {"replace", "cn", []string{"Greta2"}},
		{"add", "cn;lang-en", []string{"Greta Sample"}}, {"delete", "cn;lang-en", []string{"greta example"}}, {"add", "sn;x-bar", []string{"x"}},
		{"delete", "cn;lang-fr", nil}} {
		same(fmt.Sprintf("modify %s %s", m.op, m.attr), func(d directory) string {
			req := ldap.NewModifyRequest("uid=greta"+people, nil)
			switch m.op {
			case "delete":
				req.Delete(m.attr, m.vals)
			case "replace":
				req.Replace(m.attr, m.vals)
			case "add":
				req.Add(m.attr, m.vals)
			}
			err := d.root().Modify(req)
			return "code " + strconv.Itoa(int(code(err))) + " " + searchRender(d, "(uid=greta)", "cn")
		})
	}
	// compare
	for _, c := range [][2]string{{"cn;lang-en", "greta sample"}, {"cn", "greta sample"}, {"cn;lang-de", "greta sample"}, {"cn;x-bar", "x"}, {"name;lang-en", "GRETA SAMPLE"}} {
		same("compare "+c[0], func(d directory) string {
			ok, err := d.root().Compare("uid=greta"+people, c[0], c[1])
			return fmt.Sprintf("%v code %d", ok, code(err))
		})
	}
}

// ldapTool runs an OpenLDAP client program.
func ldapTool(t *testing.T, stdin string, prog string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCertificateWithOpenLDAPTools: a certificate added with OpenLDAP's
// ldapadd as userCertificate;binary is stored and read back by ldapsearch
// byte for byte, and a language-tagged cn keeps its tag.
func TestCertificateWithOpenLDAPTools(t *testing.T) {
	ts := newTestServer(t)
	_, _, caPEM := testCertificates(t)
	blk, _ := pem.Decode(caPEM)
	b64 := base64.StdEncoding.EncodeToString(blk.Bytes)
	ldif := "dn: uid=smime,ou=people," + testSuffix + "\nobjectClass: inetOrgPerson\nuid: smime\ncn: S Mime\ncn;lang-de: S Mime DE\nsn: M\n" +
		"userCertificate;binary:: " + b64 + "\n"
	bind := []string{"-x", "-H", "ldap://" + ts.addr, "-D", testRootDN, "-w", testRootPW}
	if out, err := ldapTool(t, ldif, "ldapadd", bind...); err != nil {
		t.Fatalf("ldapadd: %v\n%s", err, out)
	}
	out, err := ldapTool(t, "", "ldapsearch", append(bind, "-LLL", "-o", "ldif-wrap=no", "-b", "uid=smime,ou=people,"+testSuffix, "-s", "base", "userCertificate", "cn;lang-de")...)
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	if !strings.Contains(out, "userCertificate;binary:: "+b64+"\n") {
		t.Errorf("ldapsearch did not return the certificate as sent:\n%s", out)
	}
	if !strings.Contains(out, "cn;lang-de: S Mime DE\n") || strings.Contains(out, "cn: S Mime\n") {
		t.Errorf("ldapsearch cn;lang-de:\n%s", out)
	}
	// without ";binary" a certificate is refused, as by slapd
	ldif = strings.Replace(strings.Replace(ldif, "uid=smime", "uid=smime2", 1), "userCertificate;binary::", "userCertificate::", 1)
	if out, err := ldapTool(t, ldif, "ldapadd", bind...); err == nil || !strings.Contains(out, "requires ;binary transfer") {
		t.Errorf("ldapadd of userCertificate without ;binary: %v\n%s", err, out)
	}
}
