package local

import (
	"bufio"
	"io"
	"os"
)

func newBufReader(f *os.File) *bufio.Reader { return bufio.NewReaderSize(f, 32<<10) }

// crlfReader reads a file with LF line ends as CRLF: a bare LF gets a CR
// before it; an existing CRLF is kept.
type crlfReader struct {
	f       *os.File
	r       *bufio.Reader
	prev    byte
	pending bool // an LF is due after the CR just returned
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.pending {
			p[n] = '\n'
			n++
			c.pending, c.prev = false, '\n'
			continue
		}
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		if b == '\n' && c.prev != '\r' {
			p[n] = '\r'
			n++
			c.pending, c.prev = true, '\r'
			continue
		}
		p[n] = b
		n++
		c.prev = b
	}
	return n, nil
}

func (c *crlfReader) Close() error { return c.f.Close() }
