package imap

import (
	"bufio"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// cmdIdle waits for changes and reports them as they happen until the
// client sends DONE (RFC 2177, RFC 9051 §6.3.13). Changes committed in
// this process arrive through Watch at once; changes made behind our back
// (another program in the Maildir) are looked for every SyncInterval.
func (c *conn) cmdIdle(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	c.writef("+ idling\r\n")
	c.poll(true)
	if err := c.flush(); err != nil || c.quit {
		return err
	}
	c.deadline = time.Now().Add(c.s.opts.IdleTimeout)
	defer c.parkWriter()()
	lines := make(chan lineResult, 1)
	c.noFlush.Store(true) // the reader goroutine must not touch the writer
	c.waiting.Store(true) // shutdown may interrupt an idling session
	go func() {
		var r lineResult
		defer func() { // out of the session's recover: a panic would end the daemon
			if p := recover(); p != nil {
				c.s.panics.Add(1)
				c.log.Error("imap idle reader panic", "err", fmt.Sprint(p), "stack", string(debug.Stack()))
				r = lineResult{err: fmt.Errorf("panic: %v", p)}
			}
			lines <- r
		}()
		r.line, r.err = c.readLine(64)
	}()
	defer c.noFlush.Store(false)
	defer c.waiting.Store(false)
	var watch <-chan struct{}
	if c.mbox != nil {
		watch = c.mbox.watch
	}
	tick := time.NewTicker(c.s.opts.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case r := <-lines:
			return c.idleDone(tag, r)
		case <-watch:
		case <-tick.C:
		}
		c.poll(true)
		if err := c.flush(); err != nil {
			<-lines
			return err
		}
		if c.quit { // the selected mailbox went: mailboxGone said BYE
			_ = c.raw.Close() // ends the reader's wait for DONE
			<-lines
			return nil
		}
	}
}

// idleWriters holds the 4 KiB write buffers of sessions in IDLE: an idle
// session writes an untagged response now and then, which a small buffer
// carries as well, and thousands of them then hold 4 KiB less each.
var idleWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// parkWriter swaps the session's (flushed) write buffer for a small one
// and returns the function that gives it a full-size one back.
func (c *conn) parkWriter() func() {
	full := c.bw
	full.Reset(nil)
	idleWriters.Put(full)
	c.bw = bufio.NewWriterSize(c.sink(), smallWriter)
	return func() {
		// The tagged end of IDLE may still be in it; a failed write
		// leaves the connection broken, and the next read ends it.
		_ = c.flush()
		c.bw = idleWriters.Get().(*bufio.Writer)
		c.bw.Reset(c.sink())
	}
}

// smallWriter is the write buffer of a session in IDLE (bufio's minimum is
// 16 octets).
const smallWriter = 128

type lineResult struct {
	line string
	err  error
}

func (c *conn) idleDone(tag string, r lineResult) error {
	if r.err != nil {
		return r.err
	}
	if !strings.EqualFold(r.line, "DONE") {
		return bad("", "Expected DONE")
	}
	c.ok(tag, "", "IDLE terminated")
	return nil
}
