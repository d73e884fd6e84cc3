package imapconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// StartTLS reads the greeting, asks for STARTTLS (RFC 9051 §6.2.1) and
// makes the TLS handshake within timeout. Octets the server sent after
// its OK and before TLS are refused: they would be taken as said under
// TLS (STARTTLS injection, CVE-2011-0411's family). addr names the server
// in errors.
func StartTLS(ctx context.Context, conn net.Conn, tc *tls.Config, addr string, timeout time.Duration) (net.Conn, error) {
	br := bufio.NewReaderSize(conn, 4096)
	line := func() (string, error) {
		l, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errors.New("a line longer than 4096 octets")
		}
		return string(l), err
	}
	l, err := line()
	if err == nil && !strings.HasPrefix(l, "* OK") {
		err = fmt.Errorf("greeting %.80q, not * OK: no STARTTLS", l)
	}
	if err == nil {
		_, err = io.WriteString(conn, "P STARTTLS\r\n")
	}
	for n := 0; err == nil; n++ {
		if l, err = line(); err != nil {
			break
		}
		if strings.HasPrefix(l, "P ") {
			if !strings.HasPrefix(l, "P OK") {
				err = fmt.Errorf("STARTTLS refused: %.80q", l)
			}
			break
		}
		if !strings.HasPrefix(l, "* ") || n > 100 {
			err = fmt.Errorf("STARTTLS: unexpected %.80q", l)
		}
	}
	if err == nil && br.Buffered() > 0 {
		err = errors.New("the server sent data between its STARTTLS reply and the TLS handshake")
	}
	if err != nil {
		return nil, fmt.Errorf("imap STARTTLS with %s: %w", addr, err)
	}
	tlsConn := tls.Client(conn, tc)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tlsConn.HandshakeContext(hctx); err != nil {
		return nil, fmt.Errorf("TLS with %s: %w", addr, err)
	}
	return tlsConn, nil
}

// Open starts an IMAP client on conn: STARTTLS first when startTLS is
// set (done here, as the library would hide the TLS connection from the
// guard; the library then reads a greeting made up for it), every octet
// from the server through a Guard of max octets per response, and the
// greeting read. On error conn is not closed.
func Open(ctx context.Context, conn net.Conn, startTLS bool, tc *tls.Config, addr string, timeout time.Duration, max int64, opts *imapclient.Options) (*imapclient.Client, *Guard, error) {
	var greeting io.Reader
	if startTLS {
		tconn, err := StartTLS(ctx, conn, tc, addr, timeout)
		if err != nil {
			return nil, nil, err
		}
		conn = tconn
		greeting = io.MultiReader(strings.NewReader("* OK TLS is on\r\n"), conn)
	}
	g := NewGuard(conn, greeting, max)
	c := imapclient.New(g, opts)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, g, nil
}
