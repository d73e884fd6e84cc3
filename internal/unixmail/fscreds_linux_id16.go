//go:build linux && (386 || arm)

package unixmail

import "syscall"

// On 386 and arm the plain calls take 16-bit ids; the *32 ones are the
// calls glibc uses.
const (
	sysSetgroups = syscall.SYS_SETGROUPS32
	sysSetfsuid  = syscall.SYS_SETFSUID32
	sysSetfsgid  = syscall.SYS_SETFSGID32
)
