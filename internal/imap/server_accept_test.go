package imap_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"posthorn/internal/connlimit/connlimittest"
	"posthorn/internal/imap"
)

// TestServeSurvivesEMFILE: out of file descriptors (a connection flood),
// the listener waits and accepts again; it used to stop for good.
func TestServeSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := connlimittest.NewEMFILEListener(inner, 3)
	go func() { _ = e.srv.Serve(l) }()
	nc, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting after EMFILE: %q %v", line, err)
	}
}

// TestImplicitTLSRefusalInsideTLS: on an implicit-TLS listener (993) a
// refused connection gets its BYE inside TLS (RFC 8314 §3.3); in the
// clear, a client's TLS stack saw only a broken record.
func TestImplicitTLSRefusalInsideTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *imap.Options) { o.ImplicitTLS, o.MaxConnectionsPerIP = true, 1 })
	cfg := &tls.Config{InsecureSkipVerify: true}
	first, err := tls.Dial("tcp", e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if line, err := bufio.NewReader(first).ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("first greeting: %q %v", line, err)
	}
	second, err := tls.Dial("tcp", e.addr, cfg)
	if err != nil {
		t.Fatalf("the refused connection's TLS handshake: %v", err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(second).ReadString('\n'); err != nil || !strings.HasPrefix(line, "* BYE [UNAVAILABLE]") {
		t.Errorf("refusal inside TLS: %q %v", line, err)
	}
}
