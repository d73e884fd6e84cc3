package imap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// cmdAppend adds a message (RFC 9051 §6.3.12). The literal is streamed to
// the backend, never held in memory.
func (c *conn) cmdAppend(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	name, err := s.mailbox()
	if err != nil {
		return err
	}
	flags, date, err := appendOptions(s)
	if err != nil {
		return err
	}
	if _, err := c.user.Status(c.ctx, name); err != nil {
		if errors.Is(err, ErrNoMailbox) {
			err = no("TRYCREATE", "No such mailbox")
		} else {
			err = c.mapErr(err)
		}
		return c.refuseLiteral(s, err)
	}
	n, err := s.literalHeader(c.s.opts.AppendLimit)
	if errors.Is(err, errTooBig) {
		return no("TOOBIG", "Message too large") // RFC 7889: refused before "+"
	}
	if err != nil {
		return err
	}
	r := &io.LimitedReader{R: c.br, N: n}
	var body io.Reader = r
	if !s.lit8 {
		body = nulGuard{r} // RFC 9051 §4.3: CHAR8 excludes NUL
	}
	validity, uid, aerr := c.user.Append(c.ctx, name, flags, date, body, n)
	if _, err := io.Copy(io.Discard, r); err != nil { // whatever the backend left
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	if errors.Is(aerr, errNUL) {
		return syntaxf("NUL octet in a literal: send such a message as a literal8 (~{n}, RFC 3516)")
	}
	if aerr != nil {
		return c.mapErr(aerr)
	}
	c.ok(tag, "APPENDUID "+strconv.FormatUint(uint64(validity), 10)+" "+strconv.FormatUint(uint64(uid), 10), "APPEND completed")
	return nil
}

// errNUL is a NUL octet in a literal that is not a literal8.
var errNUL = errors.New("NUL in literal")

// nulGuard fails the read that meets a NUL octet, so that the backend
// stores nothing.
type nulGuard struct{ r io.Reader }

func (g nulGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if bytes.IndexByte(p[:n], 0) >= 0 {
		return 0, errNUL
	}
	return n, err
}

// appendOptions reads the optional flag list and date-time before the
// literal, and the space before it.
func appendOptions(s *scanner) ([]string, time.Time, error) {
	var flags []string
	date := time.Now()
	if err := s.sp(); err != nil {
		return nil, date, err
	}
	b, _ := s.peek()
	if b == '(' {
		var err error
		if flags, err = s.flagList(); err != nil {
			return nil, date, err
		}
		if err := s.sp(); err != nil {
			return nil, date, err
		}
		b, _ = s.peek()
	}
	if b == '"' {
		d, err := s.dateTime()
		if err != nil {
			return nil, date, err
		}
		date = d
		if err := s.sp(); err != nil {
			return nil, date, err
		}
	}
	return flags, date, nil
}

// refuseLiteral answers err to a command whose literal is still to come.
// A synchronising literal is never asked for (RFC 9051 §7.5: NO instead
// of "+"); the octets of a non-synchronising one are on their way and
// belong to this command (RFC 7888 §3), so they are read and dropped
// first. One larger than the server takes is a literalError: refuse
// closes the connection unless it can skip it.
func (c *conn) refuseLiteral(s *scanner, err error) error {
	n, sync, lerr := s.literalSize()
	switch {
	case lerr != nil:
		return lerr
	case sync:
		return err
	case n > c.s.opts.AppendLimit:
		return &literalError{n: n}
	}
	if _, derr := c.br.Discard(int(n)); derr != nil {
		return derr
	}
	if lerr := s.crlf(); lerr != nil {
		return lerr
	}
	return err
}

// seqArg reads a sequence set atom.
func seqArg(s *scanner) (*seqSet, error) {
	a, err := s.readAtomSet()
	if err != nil {
		return nil, err
	}
	set, ok := parseSeqSet(a)
	if !ok {
		return nil, syntaxf("bad sequence set")
	}
	return set, nil
}

// readAtomSet reads a sequence-set token (digits, ':', ',' and '*').
func (s *scanner) readAtomSet() (string, error) {
	var b strings.Builder
	for {
		c, err := s.peek()
		if err != nil {
			return "", err
		}
		if !(c >= '0' && c <= '9' || c == ':' || c == ',' || c == '*') {
			break
		}
		_, _ = s.next()
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "", syntaxf("expected a sequence set")
	}
	return b.String(), nil
}

// targets resolves a set to message indexes, refusing bad sequence numbers.
func (c *conn) targets(set *seqSet, uid bool) ([]int, error) {
	if !uid && !c.mbox.validSeqs(set) {
		return nil, bad("", "Invalid message sequence number")
	}
	return c.mbox.resolve(set, uid), nil
}

func (c *conn) uidsOf(idx []int) []uint32 {
	out := make([]uint32, len(idx))
	for i, x := range idx {
		out[i] = c.mbox.msgs[x].UID
	}
	return out
}

// cmdStore changes flags (RFC 9051 §6.4.6, UNCHANGEDSINCE RFC 7162 §3.1.3).
func (c *conn) cmdStore(tag string, s *scanner, uid bool) error {
	if err := s.sp(); err != nil {
		return err
	}
	set, err := seqArg(s)
	if err != nil {
		return err
	}
	since, given, err := storeModifiers(s)
	if err != nil {
		return err
	}
	op, silent, flags, err := storeAction(s)
	if err != nil {
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	if c.mbox.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	if given {
		c.condstore = true
	}
	idx, err := c.targets(set, uid)
	if err != nil {
		return err
	}
	if err := c.checkFlagCount(idx, op, flags); err != nil {
		return err
	}
	var changed []Meta
	var failed []uint32
	if given && since == 0 {
		// RFC 7162 §3.1.3: UNCHANGEDSINCE 0 fails for every message,
		// whose flags always exist.
		failed = c.uidsOf(idx)
	} else {
		changed, failed, err = c.user.SetFlags(c.mbox.ctx, c.mbox.name, c.uidsOf(idx), op, flags, since)
		if err != nil {
			return c.mapErr(err)
		}
	}
	c.storeResponses(changed, silent, uid)
	// What other sessions did meanwhile comes next (flag FETCHes, no
	// expunges: okNoExpunge's poll, done here once): the flags of a
	// message this STORE left as it was are then the current ones, not
	// the session's older view.
	seen := make(map[uint32][]string, len(idx))
	for _, i := range idx {
		seen[c.mbox.msgs[i].UID] = c.mbox.msgs[i].Flags
	}
	c.poll(false)
	if !silent {
		c.unchangedResponses(idx, changed, failed, uid, seen)
	}
	code := ""
	if len(failed) > 0 {
		code = "MODIFIED " + c.modifiedSet(failed, uid)
	}
	c.tagged(tag, "OK", code, "STORE completed")
	return nil
}

// checkFlagCount refuses a STORE that would leave a message with more
// than maxMessageFlags flags (as this session last saw them).
func (c *conn) checkFlagCount(idx []int, op FlagOp, flags []string) error {
	if op == FlagsRemove {
		return nil
	}
	given := make(map[string]bool, len(flags))
	for _, f := range flags {
		given[strings.ToLower(f)] = true
	}
	for _, i := range idx {
		n := len(given)
		if op == FlagsAdd {
			for _, f := range c.mbox.msgs[i].Flags {
				if !given[strings.ToLower(f)] {
					n++
				}
			}
		}
		if n > maxMessageFlags {
			return no("LIMIT", fmt.Sprintf("A message has at most %d flags", maxMessageFlags))
		}
	}
	return nil
}

// storeModifiers reads " [(UNCHANGEDSINCE n)] "; given tells
// UNCHANGEDSINCE 0 from none.
func storeModifiers(s *scanner) (since uint64, given bool, err error) {
	if err := s.sp(); err != nil {
		return 0, false, err
	}
	if b, _ := s.peek(); b != '(' {
		return 0, false, nil
	}
	err = s.list(func() error {
		a, err := s.atom()
		if err != nil || !strings.EqualFold(a, "UNCHANGEDSINCE") {
			return syntaxf("unknown STORE modifier")
		}
		if given { // RFC 4466 §2.5: a modifier is given at most once
			return syntaxf("UNCHANGEDSINCE given twice")
		}
		if err := s.sp(); err != nil {
			return err
		}
		n, err := s.number64()
		since, given = uint64(n), true
		return err
	})
	if err == nil {
		err = s.sp()
	}
	return since, given, err
}

func storeAction(s *scanner) (FlagOp, bool, []string, error) {
	a, err := s.atom()
	if err != nil {
		return 0, false, nil, err
	}
	a = strings.ToUpper(a)
	silent := strings.HasSuffix(a, ".SILENT")
	a = strings.TrimSuffix(a, ".SILENT")
	var op FlagOp
	switch a {
	case "FLAGS":
		op = FlagsReplace
	case "+FLAGS":
		op = FlagsAdd
	case "-FLAGS":
		op = FlagsRemove
	default:
		return 0, false, nil, syntaxf("bad STORE item")
	}
	if err := s.sp(); err != nil {
		return 0, false, nil, err
	}
	var flags []string
	if b, _ := s.peek(); b == '(' {
		flags, err = s.flagList()
	} else {
		for {
			if len(flags) == maxMessageFlags {
				return 0, false, nil, syntaxf("more than %d flags", maxMessageFlags)
			}
			f, ferr := s.flag()
			if ferr == nil {
				ferr = storableFlag(f)
			}
			if ferr != nil {
				return 0, false, nil, ferr
			}
			flags = append(flags, f)
			if !s.maybeSP() {
				break
			}
		}
	}
	return op, silent, flags, err
}

// storeResponses updates the cache and sends FETCH for changed messages.
// With .SILENT only the MODSEQ is sent, and only under CONDSTORE.
func (c *conn) storeResponses(changed []Meta, silent, uid bool) {
	for _, m := range changed {
		i := c.mbox.index(m.UID)
		if i < 0 {
			continue
		}
		c.mbox.msgs[i] = m
		var items []string
		if uid || c.condstore {
			items = append(items, "UID "+strconv.FormatUint(uint64(m.UID), 10))
		}
		if !silent {
			items = append(items, "FLAGS ("+strings.Join(m.Flags, " ")+")")
		}
		if c.condstore {
			items = append(items, "MODSEQ ("+strconv.FormatUint(m.ModSeq, 10)+")")
		}
		if !silent || c.condstore {
			c.writef("* %d FETCH (%s)\r\n", i+1, strings.Join(items, " "))
		}
	}
}

// unchangedResponses sends the flags of the targeted messages a STORE
// left as they were (+FLAGS of a flag already set): RFC 9051 §6.4.6 has
// a STORE return the flags of every message it names, unless .SILENT,
// and clients wait for them (Python's imaplib returned [None]). Messages
// that failed UNCHANGEDSINCE are reported by MODIFIED instead; those
// whose flags the poll just reported (they differ from seen) are not
// sent twice; those another session expunged get none: stale flags,
// without the one just stored, would say the STORE did not happen.
func (c *conn) unchangedResponses(idx []int, changed []Meta, failed []uint32, uid bool, seen map[uint32][]string) {
	skip := make(map[uint32]bool, len(changed)+len(failed))
	for _, m := range changed {
		skip[m.UID] = true
	}
	for _, u := range failed {
		skip[u] = true
	}
	for _, u := range c.mbox.pending {
		skip[u] = true
	}
	var same []Meta
	for _, i := range idx {
		if i >= len(c.mbox.msgs) {
			continue
		}
		m := c.mbox.msgs[i]
		if !skip[m.UID] && sameFlagSet(seen[m.UID], m.Flags) {
			same = append(same, m)
		}
	}
	c.storeResponses(same, false, uid)
}

// modifiedSet renders the MODIFIED set: UIDs for UID STORE, else
// sequence numbers.
func (c *conn) modifiedSet(failed []uint32, uid bool) string {
	if uid {
		return formatUIDs(failed)
	}
	var seqs []uint32
	for _, u := range failed {
		if i := c.mbox.index(u); i >= 0 {
			seqs = append(seqs, uint32(i+1))
		}
	}
	return formatUIDs(seqs)
}

// cmdCopy runs COPY and MOVE (RFC 9051 §6.4.7, §6.4.8; COPYUID RFC 4315).
func (c *conn) cmdCopy(tag string, s *scanner, uid, move bool) error {
	if err := s.sp(); err != nil {
		return err
	}
	set, err := seqArg(s)
	if err != nil {
		return err
	}
	if err := s.sp(); err != nil {
		return err
	}
	dst, err := s.mailbox()
	if err == nil {
		err = s.crlf()
	}
	if err != nil {
		return err
	}
	if move && c.mbox.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	if move && (dst == c.mbox.name || strings.EqualFold(dst, "INBOX") && strings.EqualFold(c.mbox.name, "INBOX")) {
		// The store refuses it too; say why rather than "invalid name".
		return no("CANNOT", "Cannot move messages to the mailbox they are in")
	}
	idx, err := c.targets(set, uid)
	if err != nil {
		return err
	}
	if len(idx) == 0 {
		c.ok(tag, "", "Nothing to do")
		return nil
	}
	validity, src, dstUIDs, err := c.user.Copy(c.mbox.ctx, c.mbox.name, dst, c.uidsOf(idx), move)
	if errors.Is(err, ErrNoMailbox) {
		return no("TRYCREATE", "No such mailbox")
	}
	if err != nil {
		return c.mapErr(err)
	}
	code := "COPYUID " + strconv.FormatUint(uint64(validity), 10) + " " + formatUIDs(src) + " " + formatUIDs(dstUIDs)
	if len(src) == 0 {
		// All expunged by another session meanwhile: COPYUID's sets
		// may not be empty (RFC 4315 §3), so there is no code.
		code = ""
	}
	if !move {
		c.ok(tag, code, "COPY completed")
		return nil
	}
	if code != "" {
		c.writef("* OK [%s] Moved\r\n", code)
	}
	c.mbox.pending = append(c.mbox.pending, src...)
	c.ok(tag, "", "MOVE completed")
	return nil
}

// cmdExpunge removes \Deleted messages (RFC 9051 §6.4.3).
func (c *conn) cmdExpunge(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	return c.expunge(tag, nil)
}

// cmdUIDExpunge removes \Deleted messages of a UID set (RFC 4315 §2.1).
func (c *conn) cmdUIDExpunge(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	set, err := seqArg(s)
	if err == nil {
		err = s.crlf()
	}
	if err != nil {
		return err
	}
	return c.expunge(tag, set)
}

func (c *conn) expunge(tag string, set *seqSet) error {
	if c.mbox.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	c.poll(false) // act on current flags
	var del []uint32
	max := c.mbox.maxUID()
	for _, m := range c.mbox.msgs {
		if containsFold(m.Flags, `\Deleted`) && (set == nil || set.contains(m.UID, max)) {
			del = append(del, m.UID)
		}
	}
	if len(del) > 0 {
		done, err := c.user.Expunge(c.mbox.ctx, c.mbox.name, del)
		if err != nil {
			return c.mapErr(err)
		}
		c.mbox.pending = append(c.mbox.pending, done...)
	}
	// With CONDSTORE on, the tagged OK carries the mailbox's new
	// HIGHESTMODSEQ, as in RFC 7162's EXPUNGE examples ("OK
	// [HIGHESTMODSEQ …] Expunged"), and as Dovecot answers: a client
	// that keeps its cache by mod-sequence (KIMAP, Thunderbird) stores
	// it without a NOOP. poll has reported every change up to it (the
	// expunges included), so the value hides nothing (RFC 5162 erratum
	// 1810).
	c.poll(true)
	code := ""
	if c.condstore && c.mbox != nil {
		code = "HIGHESTMODSEQ " + strconv.FormatUint(c.mbox.modseq, 10)
	}
	c.tagged(tag, "OK", code, "EXPUNGE completed")
	return nil
}
