package appliance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Files named on the command line are read with a bound: a wrong name
// (/dev/zero, a disk image) fails with a message instead of filling the
// memory. Streams the appliance parses as it goes (`ldif import`, `ldif
// restore`) are not read into memory here.

const (
	maxPasswordLine = 4 << 10  // the first line of a --password-file
	maxClusterID    = 64 << 10 // clusterid.txt: a few hundred bytes
)

// readBounded reads a file given on the command line, at most max bytes;
// what names the kind of file in the error.
func readBounded(path, what string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s %s is a directory", what, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s %s is larger than %s: not a %s", what, path, sizeName(max), what)
	}
	return b, nil
}

// readPassword returns the first line of a password file (without its
// line end); the rest of the file is not read.
func readPassword(file string) (string, error) {
	if file == "" {
		return "", usagef("--password-file is required")
	}
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return "", fmt.Errorf("password file %s is a directory", file)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(f, maxPasswordLine+1), maxPasswordLine+1).ReadSlice('\n')
	switch {
	case errors.Is(err, io.EOF) && len(line) > maxPasswordLine:
		return "", fmt.Errorf("password file %s: the first line is longer than %s: not a password file", file, sizeName(maxPasswordLine))
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("password file %s: the first line is longer than %s: not a password file", file, sizeName(maxPasswordLine))
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("password file %s: %w", file, err)
	}
	return strings.TrimRight(string(bytes.TrimSuffix(line, []byte("\n"))), "\r"), nil
}

// sizeName is 16 MiB, 4 KiB.
func sizeName(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
