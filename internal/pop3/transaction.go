package pop3

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// totals counts the messages not marked deleted and their octets
// (RFC 1939 §5: deleted messages are not counted).
func (c *conn) totals() (n int, size int64) {
	for i, m := range c.msgs {
		if !c.deleted[i] {
			n++
			size += m.Size
		}
	}
	return n, size
}

// number parses a message number (RFC 1939 §3: 1-based, decimal) and
// returns its index. Signs, zero, overflow and numbers past the end are
// refused, answered here.
func (c *conn) number(arg string) (int, bool) {
	n, err := strconv.ParseUint(arg, 10, 31) // digits only: no sign, no "0x"
	switch {
	case err != nil && len(arg) > 0 && strings.Trim(arg, "0123456789") == "":
		c.fail(errNoSuchMsg) // overflow: past any maildrop
	case err != nil:
		c.fail(errBadNumber)
	case n == 0 || n > uint64(len(c.msgs)):
		c.fail(errNoSuchMsg)
	default:
		return int(n - 1), true
	}
	return 0, false
}

// message is number for commands that may not refer to a deleted message
// (RFC 1939 §3).
func (c *conn) message(arg string) (int, bool) {
	i, ok := c.number(arg)
	if ok && c.deleted[i] {
		c.fail(errNoSuchMsg)
		return 0, false
	}
	return i, ok
}

func (c *conn) cmdStat(arg string) {
	if !noArgs(arg) {
		c.fail(errSyntax)
		return
	}
	n, size := c.totals()
	c.ok("%d %d", n, size) // RFC 1939 §5: exactly "+OK nn mm"
}

func (c *conn) cmdList(arg string) {
	c.listing(arg, "scan listing follows", func(i int) string { return strconv.FormatInt(c.msgs[i].Size, 10) })
}

func (c *conn) cmdUidl(arg string) {
	c.listing(arg, "unique-id listing follows", func(i int) string { return c.msgs[i].UID })
}

// listing answers LIST and UIDL: "n value" for one message, or a
// multi-line list of all that are not deleted.
func (c *conn) listing(arg, title string, value func(i int) string) {
	args := strings.Fields(arg)
	switch len(args) {
	case 0:
		var lines []string
		for i := range c.msgs {
			if !c.deleted[i] {
				lines = append(lines, strconv.Itoa(i+1)+" "+value(i))
			}
		}
		c.multiline(title, lines)
	case 1:
		if i, ok := c.message(args[0]); ok {
			c.ok("%d %s", i+1, value(i))
		}
	default:
		c.fail(errSyntax)
	}
}

func (c *conn) cmdRetr(arg string) {
	args := strings.Fields(arg)
	if len(args) != 1 {
		c.fail(errSyntax)
		return
	}
	if i, ok := c.message(args[0]); ok {
		if c.send(i, -1, fmt.Sprintf("%d octets", c.msgs[i].Size)) {
			c.retrieved++
		}
	}
}

// cmdTop sends the header, the blank line and n lines of the body
// (RFC 1939 §7).
func (c *conn) cmdTop(arg string) {
	args := strings.Fields(arg)
	if len(args) != 2 {
		c.fail(errSyntax)
		return
	}
	i, ok := c.message(args[0])
	if !ok {
		return
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || n < 0 || args[1][0] == '+' { // RFC 1939 §7: non-negative
		c.fail(errBadCount)
		return
	}
	c.send(i, n, "top of message follows")
}

// send streams message i as a multi-line response; bodyLines < 0 sends
// all of it. It reports whether the whole response went out.
func (c *conn) send(i int, bodyLines int64, title string) bool {
	r, err := c.drop.Open(c.ctx, i)
	if errors.Is(err, ErrGone) {
		// Permanent: trying again will not bring it back (the -ERR
		// without [SYS/TEMP], RFC 3206 §4).
		c.log.Info("pop3 message gone", "msg", i+1)
		c.reply(errGone)
		return false
	}
	if err != nil {
		c.log.Error("pop3 open message", "msg", i+1, "err", err)
		c.reply(errRead)
		return false
	}
	defer r.Close()
	c.ok("%s", title)
	if err := copyDotStuffed(c.bw, r, bodyLines); err != nil {
		// The response has begun and cannot carry an error: end the
		// connection so the client sees it unterminated.
		c.log.Warn("pop3 send message", "msg", i+1, "err", err)
		c.quit = true
		return false
	}
	return true
}

func (c *conn) cmdDele(arg string) {
	args := strings.Fields(arg)
	if len(args) != 1 {
		c.fail(errSyntax)
		return
	}
	i, ok := c.number(args[0])
	switch {
	case !ok:
	case c.deleted[i]:
		c.fail(&failure{text: fmt.Sprintf("message %d already deleted", i+1)})
	default:
		c.deleted[i] = true // RFC 1939 §5: only marked; QUIT removes
		c.ok("message %d deleted", i+1)
	}
}

func (c *conn) cmdRset(arg string) {
	if !noArgs(arg) {
		c.fail(errSyntax)
		return
	}
	clear(c.deleted)
	n, size := c.totals()
	c.ok("maildrop has %d messages (%d octets)", n, size)
}

func (c *conn) cmdNoop(arg string) {
	if !noArgs(arg) {
		c.fail(errSyntax)
		return
	}
	c.ok("")
}

// update is the UPDATE state (RFC 1939 §6): remove the messages marked
// deleted, release the maildrop, then answer. The lock is released before
// the reply, so a client that reconnects at once finds it free.
func (c *conn) update() {
	var del []int
	for i, d := range c.deleted {
		if d {
			del = append(del, i)
		}
	}
	if len(del) > 0 {
		if err := c.drop.Commit(c.ctx, del); err != nil {
			c.log.Error("pop3 commit", "deleted", len(del), "err", err)
			c.release()
			c.reply(errCommit)
			return
		}
	}
	c.release()
	c.log.Info("pop3 quit", "retrieved", c.retrieved, "deleted", len(del))
	c.ok("%s POP3 server signing off (%d messages deleted)", c.s.opts.Hostname, len(del))
}
