package unixmail

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// fsCredsPerThread tells that runAsUser can work here.
const fsCredsPerThread = true

// runAsUser runs fn on an OS thread of its own whose filesystem
// credentials are u's, so that the kernel checks every open, create,
// mkdir and unlink fn does as it would for u. Postfix local(8) delivers
// to files and home directories "with the privileges of the recipient"
// (set_eugid before mbox_open); root opening the file and giving it away
// afterwards let a user have a file made in a directory only root may
// write (a root-owned ~/.ssh got an authorized_keys2 owned by the user).
//
// Why a thread and not a child process: only the file operations need
// the user's rights, the message is already in our memory or open files,
// and a thread costs no exec. Linux keeps credentials per thread, but
// syscall.Setgroups and friends change every thread of the process (Go
// makes them so, for POSIX): the raw system calls below change this
// thread alone. The thread is locked and never unlocked, so the runtime
// ends it with the goroutine instead of reusing it for other work; and a
// locked thread never spawns the runtime's new threads (they come from
// its template thread), so nothing else inherits these credentials.
//
// Only fsuid and fsgid change, not the effective ids: a signal sent to us
// is still judged by our euid, and setting fsuid from 0 to a user's uid
// drops the file capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER,
// capabilities(7)) from this thread, so root's overrides are gone too.
func runAsUser(u User, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		defer func() {
			// A panic here would end the daemon, not one delivery. The
			// thread still dies with the goroutine, credentials and all.
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic while writing as uid %d: %v", u.UID, r)
			}
		}()
		if err := setThreadFSCreds(u.UID, u.GID); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// errCreds: this thread could not take the user's filesystem ids. It is
// a temporary failure (the setup can be fixed), never a bounce.
var errCreds = errors.New("cannot switch to the user's file rights")

// setThreadFSCreds gives the calling thread the supplementary groups
// [gid] and the filesystem ids uid and gid. Supplementary groups of the
// user beyond the primary one are not looked up (as for pipes, whose
// Credential has none): the kernel then grants less, never more.
func setThreadFSCreds(uid, gid int) error {
	groups := []uint32{uint32(gid)}
	if _, _, e := syscall.RawSyscall(sysSetgroups, 1, uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
		// %v, not %w: an EPERM here (root without CAP_SETGID, a
		// seccomp filter) is the operator's setup, not the user's file,
		// and must not read as the permission error that bounces.
		return fmt.Errorf("%w: setgroups(%d): %v", errCreds, gid, e)
	}
	// setfsgid and setfsuid return the previous id and no error: set,
	// then set again and see that the id took.
	syscall.RawSyscall(sysSetfsgid, uintptr(gid), 0, 0)
	if prev, _, _ := syscall.RawSyscall(sysSetfsgid, uintptr(gid), 0, 0); int(prev) != gid {
		return fmt.Errorf("%w: setfsgid(%d) did not take (fsgid %d)", errCreds, gid, prev)
	}
	syscall.RawSyscall(sysSetfsuid, uintptr(uid), 0, 0)
	if prev, _, _ := syscall.RawSyscall(sysSetfsuid, uintptr(uid), 0, 0); int(prev) != uid {
		return fmt.Errorf("%w: setfsuid(%d) did not take (fsuid %d)", errCreds, uid, prev)
	}
	return nil
}
