package local

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"
)

func newBufReader(f *os.File) *bufio.Reader { return bufio.NewReaderSize(f, 32<<10) }

// readers recycles the buffers of crlfReaders: IMAP opens many messages
// in a row (SEARCH, FETCH of a range) and each would allocate 32 KiB.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

// newCRLFReader reads f as CRLF; Close closes f and recycles the buffer.
func newCRLFReader(f *os.File) *crlfReader {
	r := readers.Get().(*bufio.Reader)
	r.Reset(f)
	return &crlfReader{f: f, r: r}
}

// crlfReader reads a file with LF line ends as CRLF: a bare LF gets a CR
// before it; an existing CRLF is kept. It copies the runs between line
// ends in bulk. This rule is what every stored file means (files written
// by any version of lfWriter, which is its inverse, and by other
// programs), so it must not change; countVsize counts by it too.
type crlfReader struct {
	f       *os.File
	r       *bufio.Reader
	prev    byte
	pending bool // an LF is due after the CR just returned
}

func (c *crlfReader) Read(p []byte) (int, error) {
	if c.r == nil {
		return 0, os.ErrClosed
	}
	n := 0
	for n < len(p) {
		if c.pending {
			p[n] = '\n'
			n++
			c.pending, c.prev = false, '\n'
			continue
		}
		if n > 0 && c.r.Buffered() == 0 {
			return n, nil // what we have, rather than wait for more
		}
		if _, err := c.r.Peek(1); err != nil {
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		buf, _ := c.r.Peek(min(c.r.Buffered(), len(p)-n))
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			n += copy(p[n:], buf)
			c.prev = buf[len(buf)-1]
			_, _ = c.r.Discard(len(buf))
			continue
		}
		n += copy(p[n:], buf[:i])
		if i > 0 {
			c.prev = buf[i-1]
		}
		_, _ = c.r.Discard(i + 1)
		if c.prev != '\r' {
			p[n] = '\r'
			n++
			c.pending, c.prev = true, '\r'
			continue
		}
		p[n] = '\n' // room: i < len(buf) <= len(p)-n before the copy
		n++
		c.prev = '\n'
	}
	return n, nil
}

func (c *crlfReader) Close() error {
	if c.r != nil {
		c.r.Reset(nil)
		readers.Put(c.r)
		c.r = nil
	}
	return c.f.Close()
}
