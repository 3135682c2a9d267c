package appliance

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyMaterialFiles lists the files below dataDir that hold secure mail's
// key material: the key-encryption key, the directory store (certificates
// and sealed private keys), and any other file with a PEM or OpenPGP
// private key block, but the machine's own TLS and SSH host keys. The mail
// queue is not read (a message may carry anything). A frontend's data
// directory lists none (issue 13, item 4): its keys come from a backend
// per message and stay in memory.
func KeyMaterialFiles(dataDir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dataDir, p)
		if d.IsDir() {
			if rel == "queue" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		switch rel {
		case kekFile, storeFile:
			out = append(out, rel)
			return nil
		case keyFile, "ssh_host_ed25519_key": // the machine's identity, not mail keys
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 16<<20))
		if err != nil {
			return err
		}
		for _, mark := range [][]byte{[]byte("PRIVATE KEY-----"), []byte("BEGIN PGP PRIVATE KEY"), []byte("posternPrivateKey"), []byte(sealPrefix)} {
			if bytes.Contains(b, mark) {
				out = append(out, rel)
				break
			}
		}
		return nil
	})
	return out, err
}
