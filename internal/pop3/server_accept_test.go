package pop3

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"posthorn/internal/connlimit/connlimittest"
)

// TestServeSurvivesEMFILE: out of file descriptors (a connection flood),
// the listener waits and accepts again; it used to stop for good.
func TestServeSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	s, _ := testServer(t, newBackend(), nil)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := connlimittest.NewEMFILEListener(inner, 3)
	go func() { _ = s.Serve(l) }()
	nc, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("greeting after EMFILE: %q %v", line, err)
	}
}
