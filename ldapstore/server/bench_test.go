package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore"
)

// BenchmarkSearchByUID measures equality searches by uid over real sockets,
// one connection per parallel client, as bench/ldap.sh does against slapd
// (run with -bench SearchByUID -cpu 1,8,32 for its client counts).
func BenchmarkSearchByUID(b *testing.B) {
	ts := newBenchServer(b, 1000)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l, err := ldap.DialURL("ldap://" + ts.addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer l.Close()
		if err := l.Bind(testRootDN, testRootPW); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			n := next.Add(1) % 1000
			res, err := l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 0, false,
				fmt.Sprintf("(uid=user%d)", n), nil, nil))
			if err != nil || len(res.Entries) != 1 {
				b.Errorf("search user%d: %v", n, err)
				return
			}
		}
	})
}

// newBenchServer is newTestServer with n more users loaded in one batch.
func newBenchServer(b *testing.B, n int) *testServer {
	b.Helper()
	ts := newTestServerTB(b)
	users := make([]*ldapstore.Entry, n)
	for i := range users {
		id := fmt.Sprint(i)
		users[i] = entry("uid=user"+id+",ou=people,"+testSuffix, "objectClass", "inetOrgPerson", "uid", "user"+id,
			"cn", "User "+id, "sn", "User", "mail", "user"+id+"@example.com", "userPassword", "{SSHA}1G904nLkTkGWjKNnQuB/hpWXC/hzYWx0c2FsdA==")
	}
	if err := ts.store.AddBatch(context.Background(), users, testRootDN); err != nil {
		b.Fatal(err)
	}
	return ts
}

// BenchmarkModifyOneClient measures the lone writer bench/ldap.sh runs (an
// administrator's script: one connection, one modify at a time, each
// acknowledged after its fsync) from the client's request to its answer.
// Profile it with -cpuprofile to see where one write spends its time.
func BenchmarkModifyOneClient(b *testing.B) {
	ts := newBenchServer(b, 1000)
	l, err := ldap.DialURL("ldap://" + ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(testRootDN, testRootPW); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		m := ldap.NewModifyRequest(fmt.Sprintf("uid=user%d,ou=people,%s", i%1000, testSuffix), nil)
		m.Replace("description", []string{fmt.Sprint(i)})
		if err := l.Modify(m); err != nil {
			b.Fatal(err)
		}
	}
}
