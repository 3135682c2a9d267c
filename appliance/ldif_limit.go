package appliance

import (
	"bytes"
	"fmt"
	"io"

	"postern/ldapstore/ldif"
)

// boundedLines passes r through but fails once a line grows past max
// bytes: the LDIF reader keeps a whole line in memory before it looks at
// it, so a file without line ends (`ldif import /dev/zero`) would
// otherwise take all the memory there is.
func boundedLines(r io.Reader, max int) io.Reader {
	return &lineBound{r: r, max: max}
}

type lineBound struct {
	r   io.Reader
	max int
	run int // bytes since the last line end
	err error
}

func (l *lineBound) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; {
		j := bytes.IndexByte(p[i:n], '\n')
		if j < 0 {
			l.run += n - i
			break
		}
		l.run += j
		if l.run > l.max {
			break
		}
		l.run, i = 0, i+j+1
	}
	if l.run > l.max {
		l.err = fmt.Errorf("ldif: a line longer than %d MiB: not an LDIF file", l.max>>20)
		return 0, l.err
	}
	return n, err
}

// ldifReader is the LDIF reader of `ldif import` and `ldif restore`.
func ldifReader(r io.Reader) *ldif.Reader {
	return ldif.NewReader(boundedLines(r, ldif.MaxRecordBytes))
}
