package imap

import (
	"errors"
	"time"
)

// errClientGone ends a long command whose client has closed the
// connection.
var errClientGone = errors.New("imap: the client closed the connection")

// peerCheckEvery is how often a long command looks whether its client is
// still there.
const peerCheckEvery = 50 * time.Millisecond

// alive is the check long loops (SEARCH, SORT, THREAD) make for each
// message: the session being killed (shutdown) ends them, and so, looked
// at every peerCheckEvery, does a client that has closed the connection
// with nothing more to read from it: without that, a SORT over 57,000
// uncached headers ran on for seconds after its client had gone, and a
// client could start it again and again (Dovecot, too, ends a session
// whose input ends).
func (c *conn) alive() error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if c.checks++; c.checks%64 != 0 {
		return nil
	}
	if now := time.Now(); now.Sub(c.lastPeek) >= peerCheckEvery {
		c.lastPeek = now
		// Commands already read and not yet run were sent before the
		// client closed its side: they are answered first.
		if c.br.Buffered() == 0 && peerClosed(c.raw) {
			c.cancel()
			return errClientGone
		}
	}
	return nil
}
