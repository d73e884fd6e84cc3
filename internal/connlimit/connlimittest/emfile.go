// Package connlimittest helps the servers' tests put their accept loops
// under the conditions connlimit.AcceptBackoff is for.
package connlimittest

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// EMFILEListener wraps a listener whose first Fails calls to Accept fail
// as they do in a process out of file descriptors (a connection flood).
type EMFILEListener struct {
	net.Listener
	Fails atomic.Int32
}

// NewEMFILEListener wraps l, failing its first n Accepts.
func NewEMFILEListener(l net.Listener, n int32) *EMFILEListener {
	e := &EMFILEListener{Listener: l}
	e.Fails.Store(n)
	return e
}

// Accept fails with EMFILE while Fails lasts, then accepts.
func (l *EMFILEListener) Accept() (net.Conn, error) {
	if l.Fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}
