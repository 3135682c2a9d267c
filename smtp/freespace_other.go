//go:build !unix

package smtp

import "errors"

// statfsFree is not available here: the free-space check refuses nothing.
func statfsFree(string) (int64, error) {
	return 0, errors.New("smtp: free space unknown on this platform")
}
