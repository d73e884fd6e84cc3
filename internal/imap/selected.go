package imap

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// selected is the state of the selected mailbox: its messages in sequence
// order with their cached meta, and what the client has been told.
type selected struct {
	name        string
	readOnly    bool
	uidValidity uint32
	uidNext     uint32
	modseq      uint64   // the highest MODSEQ the session has applied
	msgs        []Meta   // sequence number = index + 1; UIDs ascending
	pending     []uint32 // expunged UIDs not yet announced (RFC 9051 §7.5.1)
	watch       <-chan struct{}
	stop        func()
	// ctx is the session's context carrying this mailbox's identity
	// (withSelected): every call on the mailbox uses it.
	ctx context.Context
}

// index returns the position of uid, or -1.
func (m *selected) index(uid uint32) int {
	i := sort.Search(len(m.msgs), func(i int) bool { return m.msgs[i].UID >= uid })
	if i < len(m.msgs) && m.msgs[i].UID == uid {
		return i
	}
	return -1
}

func (m *selected) maxUID() uint32 {
	if len(m.msgs) == 0 {
		return 0
	}
	return m.msgs[len(m.msgs)-1].UID
}

// resolve returns the indexes of the messages a set names. For a UID set
// "*" is the highest UID; for sequence numbers the last message.
func (m *selected) resolve(set *seqSet, uid bool) []int {
	var out []int
	if uid {
		max := m.maxUID()
		for i, msg := range m.msgs {
			if set.contains(msg.UID, max) {
				out = append(out, i)
			}
		}
		return out
	}
	n := uint32(len(m.msgs))
	for i := range m.msgs {
		if set.contains(uint32(i+1), n) {
			out = append(out, i)
		}
	}
	return out
}

// validSeqs checks that sequence numbers exist: a number beyond the last
// message is a client error (RFC 9051 §9 seq-number); UID sets may name
// anything.
func (m *selected) validSeqs(set *seqSet) bool {
	n := uint32(len(m.msgs))
	return set.highest(n) <= n
}

func (c *conn) unselect() {
	if c.mbox != nil {
		c.mbox.stop()
		c.mbox = nil
	}
	if c.state == stateSelected {
		c.state = stateAuth
	}
}

// poll sends the changes of the selected mailbox since the session last
// looked: EXPUNGE (or VANISHED with QRESYNC), flag FETCHes and EXISTS.
// Expunges are held back when allowExpunge is false.
func (c *conn) poll(allowExpunge bool) {
	m := c.mbox
	if m == nil {
		return
	}
	ch, err := c.user.Changes(m.ctx, m.name, m.modseq)
	if errors.Is(err, ErrNoMailbox) {
		c.mailboxGone()
		return
	}
	if err != nil {
		c.log.Warn("imap poll", "mailbox", m.name, "err", err)
		return
	}
	for _, uid := range ch.Expunged {
		if m.index(uid) >= 0 && !slices.Contains(m.pending, uid) {
			m.pending = append(m.pending, uid)
		}
	}
	if allowExpunge {
		c.flushExpunges()
	}
	c.applyUpdates(ch.Updated)
	m.modseq = max(m.modseq, ch.HighestModSeq)
	m.uidNext = max(m.uidNext, ch.UIDNext)
}

// mailboxGone ends a session whose selected mailbox was deleted, or
// replaced by another of the same name (a new UIDVALIDITY): its UIDs and
// sequence numbers no longer name anything, and going on by name would
// read, flag or expunge the new mailbox's messages. As Dovecot does, the
// session ends with BYE (RFC 9051 §7.1.5); the command under way still
// gets its tagged answer.
func (c *conn) mailboxGone() {
	if c.quit {
		return
	}
	c.log.Info("imap selected mailbox gone", "mailbox", c.mbox.name)
	c.writef("* BYE Selected mailbox was deleted or replaced; select it again\r\n")
	c.quit = true
}

// flushExpunges announces pending expunges and drops those messages.
func (c *conn) flushExpunges() {
	m := c.mbox
	if len(m.pending) == 0 {
		return
	}
	slices.Sort(m.pending)
	if c.qresync { // RFC 7162 §3.2.10
		c.writef("* VANISHED %s\r\n", formatUIDs(m.pending))
	}
	// One pass, not a slices.Delete per message: emptying a folder of
	// 50,000 messages moved the rest of the list 50,000 times.
	gone := make(map[int]bool, len(m.pending))
	for _, uid := range m.pending {
		i := m.index(uid)
		if i < 0 || gone[i] {
			continue
		}
		if !c.qresync {
			// Each EXPUNGE renumbers the messages after it (RFC 9051
			// §7.5.1): in ascending order, the earlier ones moved this one.
			c.writef("* %d EXPUNGE\r\n", i+1-len(gone))
		}
		gone[i] = true
	}
	if len(gone) > 0 {
		keep := m.msgs[:0]
		for i, msg := range m.msgs {
			if !gone[i] {
				keep = append(keep, msg)
			}
		}
		clear(m.msgs[len(keep):])
		m.msgs = keep
	}
	m.pending = nil
}

// applyUpdates records changed flags (telling the client) and new
// messages (EXISTS).
func (c *conn) applyUpdates(updated []Meta) {
	m := c.mbox
	grew := false
	for _, u := range updated {
		if i := m.index(u.UID); i >= 0 {
			old := m.msgs[i]
			m.msgs[i] = u
			if old.ModSeq != u.ModSeq && !sameFlagSet(old.Flags, u.Flags) {
				c.writef("* %d FETCH (%s)\r\n", i+1, c.flagItems(u))
			}
			continue
		}
		if u.UID > m.maxUID() {
			m.msgs = append(m.msgs, u)
			grew = true
		}
	}
	if grew {
		c.writef("* %d EXISTS\r\n", len(m.msgs))
	}
}

// flagItems renders "UID n FLAGS (…)" plus MODSEQ with CONDSTORE.
func (c *conn) flagItems(u Meta) string {
	s := "UID " + strconv.FormatUint(uint64(u.UID), 10) + " FLAGS (" + strings.Join(u.Flags, " ") + ")"
	if c.condstore {
		s += " MODSEQ (" + strconv.FormatUint(u.ModSeq, 10) + ")"
	}
	return s
}

func sameFlagSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !containsFold(b, f) {
			return false
		}
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
