package imap

import (
	"strings"
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
	if err := c.bw.Flush(); err != nil {
		return err
	}
	c.deadline = time.Now().Add(c.s.opts.IdleTimeout)
	lines := make(chan lineResult, 1)
	c.noFlush.Store(true) // the reader goroutine must not touch the writer
	c.waiting.Store(true) // shutdown may interrupt an idling session
	go func() {
		l, err := c.readLine(64)
		lines <- lineResult{l, err}
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
		if err := c.bw.Flush(); err != nil {
			<-lines
			return err
		}
	}
}

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
