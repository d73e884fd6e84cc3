package imap

import (
	"bufio"
	"compress/flate"
	"io"
	"sync"
)

// COMPRESS=DEFLATE (RFC 4978): after the tagged OK both directions are a
// raw DEFLATE stream (RFC 1951), flushed at the end of each burst of
// responses with a sync flush so the client can read them at once.
//
// A DEFLATE compressor holds about 800 KiB, so a session does not keep
// one: it takes one from a pool for each burst of responses and gives it
// back at the flush. A compressor taken afresh starts new blocks at the
// byte boundary the sync flush left and never refers to data it did not
// write itself, so the stream stays one valid stream for the client; only
// matches across bursts are given up. The decompressor is our own
// (inflate.go: compress/flate's would sit on a burst that a client ended
// with Z_PARTIAL_FLUSH, as mbsync does); it and its input buffer, about
// 37 KiB with the client's 32 KiB window, stay with the session.
type deflater struct {
	w *flate.Writer // while a burst is being written; nil between bursts
}

var flateWriters sync.Pool

// compressedWriter is what the session's bufio.Writer writes to once
// compression is on.
type compressedWriter struct{ c *conn }

func (cw compressedWriter) Write(p []byte) (int, error) {
	z := &cw.c.zout
	if z.w == nil {
		if w, ok := flateWriters.Get().(*flate.Writer); ok {
			w.Reset(connWriter{cw.c})
			z.w = w
		} else {
			w, _ := flate.NewWriter(connWriter{cw.c}, flate.BestSpeed) // no error for a valid level
			z.w = w
		}
	}
	return z.w.Write(p)
}

// flush sends everything written: the buffered responses, and with
// compression the compressor's output up to a sync flush, after which the
// compressor goes back to the pool.
func (c *conn) flush() error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	w := c.zout.w
	if w == nil {
		return nil
	}
	c.zout.w = nil
	err := w.Flush()
	w.Reset(io.Discard)
	flateWriters.Put(w)
	return err
}

// pending reports whether output waits for a flush.
func (c *conn) pending() bool { return c.bw.Buffered() > 0 || c.zout.w != nil }

// cmdCompress turns compression on (RFC 4978 §3).
func (c *conn) cmdCompress(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	mech, err := s.atom()
	if err != nil {
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	switch {
	case c.compressed:
		return no("COMPRESSIONACTIVE", "DEFLATE is on already")
	case !equalFoldASCII(mech, "DEFLATE"):
		return bad("", "Unknown compression mechanism")
	}
	c.tagged(tag, "OK", "", "DEFLATE active")
	if err := c.flush(); err != nil {
		return err
	}
	if n := c.br.Buffered(); n > 0 {
		// RFC 4978 §3: the client waits for the OK before compressing;
		// whatever it sent before is not part of the compressed stream.
		c.log.Warn("imap discarding data sent after COMPRESS", "bytes", n)
	}
	c.compressed = true
	c.zin = newInflater(bufio.NewReaderSize(timedReader{c}, 4096))
	c.br.Reset(inflatedReader{c})
	c.bw.Reset(c.sink())
	return nil
}

// sink is where the session's write buffer writes: the connection, or
// the compressor.
func (c *conn) sink() io.Writer {
	if c.compressed {
		return compressedWriter{c}
	}
	return connWriter{c}
}

// inflatedReader is what the session's bufio.Reader reads once
// compression is on.
type inflatedReader struct{ c *conn }

func (r inflatedReader) Read(p []byte) (int, error) {
	n, err := r.c.zin.Read(p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the client ended the DEFLATE stream: nothing may follow
	}
	return n, err
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if upperASCII(a[i]) != upperASCII(b[i]) {
			return false
		}
	}
	return true
}
