package ldapstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// migrate2 upgrades a file of layout version 2 to version 3 in Open's
// transaction (so a crash leaves the file as it was). Version 3 prepares
// strings with RFC 4518 (issue 9, item 14): the DN keys of the dn bucket,
// the keys the records repeat, the suffix key and the equality indexes
// were made with the old preparation. Every DN key is made again from the
// entry's DN, and the indexes are dropped for syncIndexes to build anew.
// Two entries whose DNs were distinct and are equal under RFC 4518 (say
// "uid=straße" and "uid=strasse") cannot both keep their names: Open
// fails and names them, and the previous build can rename one.
//
// Version 2 dropped attribute options: a certificate added as
// "userCertificate;binary" was stored as "userCertificate", which version 3
// refuses (RFC 4523 §2 requires the binary transfer option, as slapd).
// Its name is renamed in the names bucket, so every record follows.
//
// The userPassword values that Add and Modify would now refuse
// (CheckPasswordValue) are logged, not changed.
func (s *Store) migrate2(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	old := keyRDNs(meta.Get(mSuffix))
	sufRDNs, err := s.sch.NormalizeRDNs(strings.Join(old, ","))
	if err != nil || !bytes.Equal(dnKey(sufRDNs), s.sufKey) {
		return fmt.Errorf("ldapstore: database holds another suffix than %q", s.suffix)
	}
	if err := s.renameBinaryTypes(tx); err != nil {
		return err
	}
	type rekey struct{ id, rec []byte }
	var moved []rekey
	keys := map[string]string{} // new dn key -> DN, to find clashes
	ids := map[string][]byte{}
	unusable := 0
	entries := tx.Bucket(bEntries)
	err = entries.ForEach(func(id, rec []byte) error {
		d, err := recordDN(rec)
		if err != nil {
			return fmt.Errorf("ldapstore: migrate: entry %x: %w", id, err)
		}
		rdns, err := s.sch.NormalizeRDNs(d)
		if err != nil {
			return fmt.Errorf("ldapstore: migrate: entry %q: %w", d, err)
		}
		nk := string(dnKey(rdns))
		if other, clash := keys[nk]; clash {
			return fmt.Errorf("ldapstore: migrate: entries %q and %q have the same name under RFC 4518 matching; rename one with the previous version", other, d)
		}
		keys[nk] = d
		ids[nk] = append([]byte(nil), id...)
		_, ok, err := recordHeader(rec)
		if err != nil {
			return fmt.Errorf("ldapstore: migrate: entry %q: %w", d, err)
		}
		if string(ok) != nk {
			moved = append(moved, rekey{id: append([]byte(nil), id...), rec: spliceKey(rec, []byte(nk))})
		}
		unusable += s.logUnusablePasswords(tx, id, rec, d)
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range moved {
		if err := entries.Put(m.id, m.rec); err != nil {
			return err
		}
	}
	// the dn bucket anew
	if err := tx.DeleteBucket(bDN); err != nil {
		return err
	}
	dnb, err := tx.CreateBucket(bDN)
	if err != nil {
		return err
	}
	dnb.FillPercent = fillPercent
	for k, id := range ids {
		if err := dnb.Put([]byte(k), id); err != nil {
			return err
		}
	}
	// the indexes anew (syncIndexes builds the missing ones)
	idx := tx.Bucket(bIdx)
	var subs [][]byte
	idx.ForEach(func(k, v []byte) error {
		if v == nil {
			subs = append(subs, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range subs {
		if err := idx.DeleteBucket(k); err != nil {
			return err
		}
	}
	if err := meta.Put(mSuffix, s.sufKey); err != nil {
		return err
	}
	if err := meta.Put(mVersion, []byte{layoutVersion}); err != nil {
		return err
	}
	s.log.Info("ldapstore: migrated the database from layout version 2 to 3 (RFC 4518 string preparation)",
		slog.Int("entries", len(ids)), slog.Int("renamed_keys", len(moved)), slog.Int("unusable_passwords", unusable))
	return nil
}

// spliceKey returns rec with its dn key replaced by key.
func spliceKey(rec, key []byte) []byte {
	l, n := binary.Uvarint(rec[17:])
	rest := rec[17+n+int(l):]
	out := make([]byte, 0, len(rec)+len(key))
	out = append(out, rec[:17]...)
	out = binary.AppendUvarint(out, uint64(len(key)))
	out = append(out, key...)
	return append(out, rest...)
}

// logUnusablePasswords logs the userPassword values of a record that no
// password can verify (stored before Add and Modify refused them) and
// returns how many there are.
func (s *Store) logUnusablePasswords(tx *bolt.Tx, id, rec []byte, d string) int {
	r, err := s.bucketsOf(tx).decodeRecord(id, rec, 0)
	if err != nil {
		return 0
	}
	n := 0
	for _, v := range r.entry.Get("userPassword") {
		if err := CheckPasswordValue(v); err != nil {
			s.log.Warn("ldapstore: stored userPassword value cannot be verified; set a new password", slog.String("dn", d), slog.Any("err", err))
			n++
		}
	}
	return n
}

// renameBinaryTypes renames the stored names of attribute types that
// require ";binary" (certificates) to their description with it. Records
// name types by number (names.go), so this renames them everywhere.
func (s *Store) renameBinaryTypes(tx *bolt.Tx) error {
	b := tx.Bucket(bNames)
	nm := s.names.Load()
	renamed := false
	for n, name := range nm.byNum {
		at := s.sch.Attr(name)
		if at == nil || strings.IndexByte(name, ';') >= 0 || !at.RequiresBinary() || at.Name() != name {
			continue
		}
		to := name + ";binary"
		if _, taken := nm.nums[to]; taken {
			return fmt.Errorf("ldapstore: migrate: both %q and %q are stored names", name, to)
		}
		if err := b.Put(nameKey(uint64(n)), []byte(to)); err != nil {
			return err
		}
		s.log.Info("ldapstore: migrate: attribute renamed", slog.String("from", name), slog.String("to", to))
		renamed = true
	}
	if !renamed {
		return nil
	}
	fresh, err := loadNames(b)
	if err != nil {
		return err
	}
	s.names.Store(fresh)
	return nil
}
