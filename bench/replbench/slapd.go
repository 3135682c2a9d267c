package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// newSlapdPair is two stock slapd multi-provider nodes: back_mdb,
// syncprov, serverID, and syncrepl refreshAndPersist to each other.
func newSlapdPair(dir, bin string) *procPair {
	return &procPair{sys: "slapd", launch: func(node string, sid int, addr, peer string) (*exec.Cmd, error) {
		conf, err := slapdConf(filepath.Join(dir, node), sid, peer)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-f", conf, "-h", "ldap://"+addr+"/", "-d", "0")
		return startProc(cmd, addr, fmt.Sprintf("slapd %s (see %s)", node, conf))
	}}
}

// slapdConf writes the slapd.conf of one node in dir.
func slapdConf(dir string, sid int, peer string) (string, error) {
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
