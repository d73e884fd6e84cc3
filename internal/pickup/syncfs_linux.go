package pickup

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the file system that holds path (syncfs(2)): its data,
// its metadata and every directory entry on it. It needs no permission
// on the directory, only a file descriptor.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: path, Err: err}
	}
	return nil
}
