//go:build unix

package smtp

import "golang.org/x/sys/unix"

// statfsFree returns the octets available to an unprivileged writer on the
// file system that holds dir (statfs(2) f_bavail × f_bsize).
func statfsFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
