//go:build unix

package maildir

import (
	"fmt"
	"os"
	"syscall"
)

// flock takes an exclusive advisory lock (flock(2)) on the file at path,
// creating it if needed, and returns the function that releases it. flock
// locks belong to the open file description, so two Store instances in one
// process exclude each other just like two processes do.
func flock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("maildir: lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("maildir: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// inode returns the inode number of fi, which tells a replaced file from
// the one we read.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
