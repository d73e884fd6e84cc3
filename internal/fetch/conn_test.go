package fetch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// dripServer accepts one connection on a new listener and runs serve on
// it; it returns the listener's address.
func dripServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c, bufio.NewReader(c))
	}()
	return ln.Addr().String()
}

// drip writes one octet every 20 ms (50 octets a second, below minRate)
// until the peer goes away, for at most 8 seconds.
func drip(c net.Conn) {
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); {
		if _, err := c.Write([]byte("x")); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeadlineConnPace: an answer that trickles in, every octet well
// within the read timeout, ends when the exchange's allowance is spent;
// one that comes at speed is not cut, and time spent idle does not count.
func TestDeadlineConnPace(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	t.Run("drip", func(t *testing.T) {
		t.Parallel()
		nc, err := net.Dial("tcp", dripServer(t, func(c net.Conn, _ *bufio.Reader) { drip(c) }))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c := newDeadlineConn(nc, timeout)
		c.begin()
		start := time.Now()
		_, err = io.Copy(io.Discard, c)
		took := time.Since(start)
		if !errors.Is(err, os.ErrDeadlineExceeded) || took < timeout || took > timeout+time.Second {
			t.Errorf("read ended after %v with %v; want a deadline error after about %v", took, err, timeout)
		}
	})
	t.Run("fast", func(t *testing.T) {
		t.Parallel()
		const size = 4 << 20
		nc, err := net.Dial("tcp", dripServer(t, func(c net.Conn, _ *bufio.Reader) {
			// 4 MiB in 16 steps over about 0.5 s: beyond the timeout as
			// a whole, far above minRate.
			for range 16 {
				c.Write(make([]byte, size/16))
				time.Sleep(35 * time.Millisecond)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c := newDeadlineConn(nc, timeout)
		c.begin()
		if n, err := io.Copy(io.Discard, c); n != size || err != nil {
			t.Errorf("read %d octets, %v; want %d", n, err, size)
		}
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		nc, err := net.Dial("tcp", dripServer(t, func(c net.Conn, _ *bufio.Reader) {
			time.Sleep(2 * timeout)
			c.Write([]byte("* 2 EXISTS\r\n"))
			time.Sleep(timeout / 2)
			c.Write([]byte("A1 OK done\r\n"))
			time.Sleep(time.Second)
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c := newDeadlineConn(nc, timeout)
		c.begin()
		c.setIdle(true)
		br := bufio.NewReader(c)
		if l, err := br.ReadString('\n'); err != nil || !strings.Contains(l, "EXISTS") {
			t.Fatalf("idle read: %q, %v", l, err)
		}
		c.setIdle(false)
		if l, err := br.ReadString('\n'); err != nil || !strings.Contains(l, "OK") {
			t.Errorf("after idle: %q, %v; want the answer (idle time counted?)", l, err)
		}
	})
}

// TestPOP3SlowDrip: a server that answers RETR one octet at a time, each
// within the timeout, fails the pass in about the timeout instead of
// holding it for ever.
func TestPOP3SlowDrip(t *testing.T) {
	t.Parallel()
	addr := dripServer(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "+OK ready\r\n")
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.ToUpper(strings.Fields(l + " x")[0]) {
			case "UIDL":
				io.WriteString(c, "+OK\r\n1 a\r\n.\r\n")
			case "LIST":
				io.WriteString(c, "+OK\r\n1 100000\r\n.\r\n")
			case "RETR":
				io.WriteString(c, "+OK\r\n")
				drip(c)
				return
			default:
				io.WriteString(c, "+OK\r\n")
			}
		}
	})
	src := newPOP3Peer(t).source()
	host, port, _ := net.SplitHostPort(addr)
	src.Host = host
	fmt.Sscan(port, &src.Port)
	src.Timeout = 500 * time.Millisecond
	start := time.Now()
	_, err := once(t, newFetcher(t, src, &memDeliverer{}, t.TempDir()))
	if took := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || took > 5*time.Second {
		t.Errorf("pass ended after %v with %v; want a deadline error within seconds", took, err)
	}
}

// TestIMAPSlowDrip: the same for an IMAP server that answers SELECT with
// an endless trickle of untagged data.
func TestIMAPSlowDrip(t *testing.T) {
	t.Parallel()
	addr := dripServer(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "* OK [CAPABILITY IMAP4rev1] ready\r\n")
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(l)
			if len(f) < 2 {
				return
			}
			switch strings.ToUpper(f[1]) {
			case "SELECT", "EXAMINE":
				io.WriteString(c, "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [")
				drip(c)
				return
			default:
				io.WriteString(c, f[0]+" OK done\r\n")
			}
		}
	})
	p := &imapPeer{addr: addr}
	src := p.source()
	src.Timeout = 500 * time.Millisecond
	start := time.Now()
	_, err := once(t, newFetcher(t, src, &memDeliverer{}, t.TempDir()))
	if took := time.Since(start); err == nil || took > 5*time.Second {
		t.Errorf("pass ended after %v with %v; want an error within seconds", took, err)
	}
}
