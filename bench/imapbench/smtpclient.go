package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"time"
)

// smtpConn is a minimal SMTP or LMTP client (lmtp: LHLO, one reply per
// recipient after the data).
type smtpConn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	lmtp bool
}

func dialSMTP(addr string, lmtp bool, timeout time.Duration) (*smtpConn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &smtpConn{nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriterSize(nc, 64<<10), lmtp: lmtp}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := c.expect(220); err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	hello := "EHLO"
	if lmtp {
		hello = "LHLO"
	}
	if err := c.cmd(250, "%s bench.example.net", hello); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *smtpConn) Close() error {
	_, _ = c.bw.WriteString("QUIT\r\n")
	_ = c.bw.Flush()
	return c.nc.Close()
}

// expect reads one (multi-line) reply and checks its code.
func (c *smtpConn) expect(code int) (string, error) {
	var text strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return text.String(), err
		}
		text.WriteString(line)
		if len(line) < 4 {
			return text.String(), fmt.Errorf("bad reply %q", line)
		}
		if line[3] == '-' {
			continue
		}
		var got int
		fmt.Sscanf(line[:3], "%d", &got)
		if got != code {
			return text.String(), fmt.Errorf("expected %d, got %q", code, strings.TrimSpace(text.String()))
		}
		return text.String(), nil
	}
}

func (c *smtpConn) cmd(code int, format string, args ...any) error {
	fmt.Fprintf(c.bw, format+"\r\n", args...)
	if err := c.bw.Flush(); err != nil {
		return err
	}
	_, err := c.expect(code)
	return err
}

// send delivers msg (LF or CRLF line ends) to rcpts and returns when the
// final reply (the last one, for LMTP) has arrived, with its time.
func (c *smtpConn) send(from string, rcpts []string, msg []byte, timeout time.Duration) (time.Time, error) {
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	defer c.nc.SetDeadline(time.Time{})
	if err := c.cmd(250, "MAIL FROM:<%s>", from); err != nil {
		return time.Time{}, fmt.Errorf("MAIL: %w", err)
	}
	for _, r := range rcpts {
		if err := c.cmd(250, "RCPT TO:<%s>", r); err != nil {
			return time.Time{}, fmt.Errorf("RCPT %s: %w", r, err)
		}
	}
	if err := c.cmd(354, "DATA"); err != nil {
		return time.Time{}, fmt.Errorf("DATA: %w", err)
	}
	writeDotStuffed(c.bw, msg)
	c.bw.WriteString(".\r\n")
	if err := c.bw.Flush(); err != nil {
		return time.Time{}, err
	}
	n := 1
	if c.lmtp {
		n = len(rcpts)
	}
	for i := 0; i < n; i++ {
		if _, err := c.expect(250); err != nil {
			return time.Time{}, fmt.Errorf("end of data: %w", err)
		}
	}
	return time.Now(), nil
}

// writeDotStuffed writes msg with CRLF line ends and leading dots doubled.
func writeDotStuffed(w *bufio.Writer, msg []byte) {
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		var line []byte
		if i < 0 {
			line, msg = msg, nil
		} else {
			line, msg = msg[:i], msg[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && line[0] == '.' {
			w.WriteByte('.')
		}
		w.Write(line)
		w.WriteString("\r\n")
	}
}
