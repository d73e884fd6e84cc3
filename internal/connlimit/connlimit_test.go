package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(3, 2)
	a := netip.MustParseAddr("192.0.2.1")
	r1, err := l.Admit(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Admit(netip.MustParseAddr("::ffff:192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Admit(a); !errors.Is(err, ErrPerAddr) {
		t.Errorf("third from one address: %v", err)
	}
	// Two addresses of one IPv6 /64 count together.
	if _, err := l.Admit(netip.MustParseAddr("2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Admit(netip.MustParseAddr("2001:db8::2")); !errors.Is(err, ErrBusy) {
		t.Errorf("over the total: %v", err)
	}
	r1()
	r1() // a second release is harmless
	if _, err := l.Admit(netip.MustParseAddr("2001:db8::2")); err != nil {
		t.Errorf("after a release: %v", err)
	}
	if _, err := l.Admit(netip.MustParseAddr("2001:db8:0:0:ffff::3")); !errors.Is(err, ErrBusy) {
		t.Errorf("total still enforced: %v", err)
	}
}

// TestAcceptBackoff: running out of file descriptors is a passing
// condition to wait out, not the end of a listener.
func TestAcceptBackoff(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	d, ok := AcceptBackoff(emfile, 0)
	if !ok || d != 5*time.Millisecond {
		t.Errorf("EMFILE: %v %v, want 5ms and retry", d, ok)
	}
	if d, _ = AcceptBackoff(emfile, 800*time.Millisecond); d != time.Second {
		t.Errorf("backoff past 1s: %v", d)
	}
	if _, ok := AcceptBackoff(net.ErrClosed, 0); ok {
		t.Error("a closed listener is retried")
	}
	if _, ok := AcceptBackoff(&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EBADF)}, 0); ok {
		t.Error("EBADF is retried")
	}
}
