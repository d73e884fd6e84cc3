//go:build !linux

package pickup

import "syscall"

// syncFS flushes every file system: without syncfs(2), sync(2) is the way
// to make a directory entry durable that the caller may not open.
func syncFS(string) error {
	syscall.Sync()
	return nil
}
