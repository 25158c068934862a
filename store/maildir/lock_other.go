//go:build !unix

package maildir

import (
	"fmt"
	"os"
)

// flock on systems without flock(2) only creates the lock file: there,
// Store instances are safe within one process (per-folder mutexes) but two
// processes must not share a data directory.
func flock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("maildir: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// inode is unknown here: replaced files are told apart by size, mtime and
// the index's generation token only.
func inode(fi os.FileInfo) uint64 { return 0 }
