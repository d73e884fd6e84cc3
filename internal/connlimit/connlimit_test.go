package connlimit

import (
	"errors"
	"net/netip"
	"testing"
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
