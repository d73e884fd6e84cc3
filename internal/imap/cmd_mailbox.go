package imap

import (
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// errExpungeIssued: a message of the session's view is gone, expunged by
// another session before this one was told (RFC 9051 §7.1 EXPUNGEISSUED,
// RFC 2180 §4.1). It is no server fault: commands skip such a message
// and report this at the end.
var errExpungeIssued = no("EXPUNGEISSUED", "Some of the requested messages no longer exist")

// mapErr turns a backend error into a tagged NO with an RFC 5530 code.
func (c *conn) mapErr(err error) error {
	switch {
	case errors.Is(err, ErrNoMailbox):
		return no("NONEXISTENT", "No such mailbox")
	case errors.Is(err, ErrExists):
		return no("ALREADYEXISTS", "Mailbox already exists")
	case errors.Is(err, ErrBadName):
		return no("CANNOT", "Invalid mailbox name")
	case errors.Is(err, ErrOverQuota):
		return no("OVERQUOTA", "Quota exceeded")
	case errors.Is(err, ErrCannotDo):
		return no("CANNOT", "Operation not allowed")
	case errors.Is(err, ErrTemporary):
		return no("UNAVAILABLE", "Temporary failure, try again")
	case errors.Is(err, ErrNoMessage), errors.Is(err, fs.ErrNotExist):
		// A message file gone while a command reads it: expunged by
		// another session (or program) meanwhile, as in the session's
		// view it still exists (RFC 2180 §4.1).
		return errExpungeIssued
	}
	var re *respError
	if errors.As(err, &re) {
		return err
	}
	c.log.Error("imap backend", "err", err)
	return no("SERVERBUG", "Internal error")
}

// validName refuses names a client must not create: empty parts, "." and
// ".." parts, wildcards and controls (security.md §2.12).
func validName(name string) bool {
	if name == "" || len(name) > 1024 || strings.HasPrefix(name, "/") {
		return false
	}
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." || p == ".." || strings.HasPrefix(p, "~") {
			return false
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '%' || r == '*' {
			return false
		}
	}
	return true
}

func (c *conn) cmdSelect(tag string, s *scanner) error  { return c.selectMailbox(tag, s, false) }
func (c *conn) cmdExamine(tag string, s *scanner) error { return c.selectMailbox(tag, s, true) }

// qresyncParams are the QRESYNC select parameters (RFC 7162 §3.2.5).
type qresyncParams struct {
	uidValidity uint32
	modseq      uint64
	known       *seqSet
}

// selectMailbox runs SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3).
func (c *conn) selectMailbox(tag string, s *scanner, readOnly bool) error {
	if err := s.sp(); err != nil {
		return err
	}
	name, err := s.mailbox()
	if err != nil {
		return err
	}
	qr, err := c.selectParams(s)
	if err != nil {
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	if c.mbox != nil {
		c.unselect()
		c.writef("* OK [CLOSED] Previous mailbox closed\r\n")
	}
	snap, err := c.user.Snapshot(c.ctx, name)
	if err != nil {
		return c.mapErr(err)
	}
	m := &selected{name: name, readOnly: readOnly, uidValidity: snap.UIDValidity, uidNext: snap.UIDNext,
		modseq: snap.HighestModSeq, msgs: snap.Messages, ctx: withSelected(c.ctx, name, snap.UIDValidity)}
	m.watch, m.stop = c.user.Watch(name)
	c.mbox, c.state = m, stateSelected
	c.selectResponses(m)
	if qr != nil && qr.uidValidity == m.uidValidity {
		c.qresyncSelect(qr)
	}
	access := "READ-WRITE"
	if readOnly {
		access = "READ-ONLY"
	}
	c.tagged(tag, "OK", access, "Mailbox selected")
	return nil
}

// selectParams reads "(CONDSTORE)" or "(QRESYNC (…))".
func (c *conn) selectParams(s *scanner) (*qresyncParams, error) {
	if !s.maybeSP() {
		return nil, nil
	}
	var qr *qresyncParams
	err := s.list(func() error {
		a, err := s.atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "CONDSTORE":
			c.condstore = true
			return nil
		case "QRESYNC":
			if !c.qresync {
				return bad("", "QRESYNC must be ENABLEd first")
			}
			if err := s.sp(); err != nil {
				return err
			}
			qr, err = parseQresync(s)
			return err
		}
		return syntaxf("unknown SELECT parameter")
	})
	return qr, err
}

func parseQresync(s *scanner) (*qresyncParams, error) {
	qr := &qresyncParams{}
	step := 0
	err := s.list(func() error {
		var err error
		switch step {
		case 0:
			qr.uidValidity, err = s.number()
		case 1:
			var n int64
			n, err = s.number64()
			qr.modseq = uint64(n)
		case 2:
			var a string
			if a, err = s.atom(); err == nil {
				var ok bool
				if qr.known, ok = parseSeqSet(a); !ok {
					err = syntaxf("bad known-uids")
				}
			}
		case 3: // seq-match-data: accepted, not needed with tombstones
			err = s.list(func() error { _, err := s.atom(); return err })
		default:
			err = syntaxf("too many QRESYNC parameters")
		}
		step++
		return err
	})
	if err == nil && step < 2 {
		err = syntaxf("QRESYNC needs UIDVALIDITY and MODSEQ")
	}
	return qr, err
}

// selectResponses sends the untagged data of a SELECT.
func (c *conn) selectResponses(m *selected) {
	c.writef("* %d EXISTS\r\n", len(m.msgs))
	if !c.rev2 {
		c.writef("* 0 RECENT\r\n")
	}
	flags := []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}
	seen := map[string]bool{}
	for _, f := range flags {
		seen[strings.ToLower(f)] = true
	}
	for _, msg := range m.msgs {
		for _, f := range msg.Flags {
			if k := strings.ToLower(f); !seen[k] { // flags are case-insensitive
				seen[k] = true
				flags = append(flags, f)
			}
		}
	}
	c.writef("* FLAGS (%s)\r\n", strings.Join(flags, " "))
	perm := "(" + strings.Join(flags, " ") + ` \*)`
	if m.readOnly {
		perm = "()"
	}
	c.writef("* OK [PERMANENTFLAGS %s] Flags allowed\r\n", perm)
	if !c.rev2 {
		for i, msg := range m.msgs {
			if !containsFold(msg.Flags, `\Seen`) {
				c.writef("* OK [UNSEEN %d] First unseen\r\n", i+1)
				break
			}
		}
	}
	c.writef("* OK [UIDVALIDITY %d] UIDs valid\r\n", m.uidValidity)
	c.writef("* OK [UIDNEXT %d] Predicted next UID\r\n", m.uidNext)
	if c.condstore {
		c.writef("* OK [HIGHESTMODSEQ %d] Highest\r\n", m.modseq)
	}
	if c.rev2 {
		c.writef("* LIST () \"/\" %s\r\n", c.mailboxName(m.name))
	}
}

// qresyncSelect tells a resynchronising client what it missed: VANISHED
// (EARLIER) and FETCH for changes since its MODSEQ (RFC 7162 §3.2.5.1).
func (c *conn) qresyncSelect(qr *qresyncParams) {
	m := c.mbox
	ch, err := c.user.Changes(m.ctx, m.name, qr.modseq)
	if err != nil {
		return
	}
	var gone []uint32
	for _, uid := range ch.Expunged {
		// One still in the view was expunged after its snapshot: the
		// session reports it later, as VANISHED, and the sequence
		// numbers stay right. Named here too, the client dropped a
		// message the server still counted.
		if (qr.known == nil || qr.known.contains(uid, m.uidNext)) && m.index(uid) < 0 {
			gone = append(gone, uid)
		}
	}
	if len(gone) > 0 {
		c.writef("* VANISHED (EARLIER) %s\r\n", formatUIDs(gone))
	}
	for _, u := range ch.Updated {
		if i := m.index(u.UID); i >= 0 {
			c.writef("* %d FETCH (%s)\r\n", i+1, c.flagItems(m.msgs[i]))
		}
	}
}

func (c *conn) cmdClose(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	if !c.mbox.readOnly { // RFC 9051 §6.4.1: expunge silently
		var del []uint32
		for _, m := range c.mbox.msgs {
			if containsFold(m.Flags, `\Deleted`) {
				del = append(del, m.UID)
			}
		}
		if len(del) > 0 {
			if _, err := c.user.Expunge(c.mbox.ctx, c.mbox.name, del); err != nil {
				return c.mapErr(err)
			}
		}
	}
	c.unselect()
	c.tagged(tag, "OK", "", "CLOSE completed")
	return nil
}

func (c *conn) cmdUnselect(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	c.unselect()
	c.tagged(tag, "OK", "", "UNSELECT completed")
	return nil
}

// oneMailbox parses " mailbox" CRLF.
func oneMailbox(s *scanner) (string, error) {
	if err := s.sp(); err != nil {
		return "", err
	}
	name, err := s.mailbox()
	if err == nil {
		err = s.crlf()
	}
	return name, err
}

func (c *conn) cmdCreate(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	name, err := s.mailbox()
	if err != nil {
		return err
	}
	var uses []string
	withUse := s.maybeSP() // RFC 6154 §3: CREATE … (USE (\Sent))
	if withUse {
		if uses, err = createUse(s); err != nil {
			return err
		}
	}
	if err := s.crlf(); err != nil {
		return err
	}
	use := ""
	if withUse {
		if use, err = oneSpecialUse(uses); err != nil {
			return err
		}
	}
	if name == "INBOX" {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	if !validName(name) {
		return no("CANNOT", "Invalid mailbox name")
	}
	// The mailbox itself first: a name the store refuses (too long, say)
	// then leaves no superiors behind.
	if err := c.user.Create(c.ctx, name, use); err != nil {
		return c.mapErr(err)
	}
	if err := c.createParents(name); err != nil {
		return err
	}
	c.ok(tag, "", "CREATE completed")
	return nil
}

// specialUses are the RFC 6154 §2 special-use attributes a mailbox may
// be created with.
var specialUses = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

// createUse reads CREATE's "(USE (attr...))" (RFC 6154 §3); see
// oneSpecialUse for what it may hold.
func createUse(s *scanner) ([]string, error) {
	var uses []string
	err := s.list(func() error {
		a, err := s.atom()
		if err != nil || !strings.EqualFold(a, "USE") {
			return syntaxf("unknown CREATE parameter")
		}
		if err := s.sp(); err != nil {
			return err
		}
		return s.list(func() error {
			f, err := s.flag()
			uses = append(uses, f)
			return err
		})
	})
	return uses, err
}

// oneSpecialUse checks what createUse read. A mailbox here holds at most
// one special use, so anything but one of them gets NO [USEATTR] and
// nothing is created (RFC 6154 §5.3): any flag was taken, \Noselect
// made a selectable mailbox look unselectable, and a second use was
// dropped in silence.
func oneSpecialUse(uses []string) (string, error) {
	if len(uses) != 1 {
		return "", no("USEATTR", "One special-use attribute per mailbox")
	}
	for _, u := range specialUses {
		if strings.EqualFold(u, uses[0]) {
			return u, nil
		}
	}
	return "", no("USEATTR", "Not a special-use attribute: "+uses[0])
}

// createParents creates missing superiors (RFC 9051 §6.3.4).
func (c *conn) createParents(name string) error {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		if err := c.user.Create(c.ctx, p, ""); err != nil && !errors.Is(err, ErrExists) {
			return c.mapErr(err)
		}
	}
	return nil
}

func (c *conn) cmdDelete(tag string, s *scanner) error {
	name, err := oneMailbox(s)
	if err != nil {
		return err
	}
	if name == "INBOX" {
		return no("CANNOT", "INBOX cannot be deleted")
	}
	if c.mbox != nil && c.mbox.name == name {
		c.unselect()
	}
	if err := c.user.Delete(c.ctx, name); err != nil {
		return c.mapErr(err)
	}
	c.ok(tag, "", "DELETE completed")
	return nil
}

func (c *conn) cmdRename(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	from, err := s.mailbox()
	if err != nil {
		return err
	}
	to, err := oneMailbox(s)
	if err != nil {
		return err
	}
	if !validName(to) || to == "INBOX" {
		return no("CANNOT", "Invalid mailbox name")
	}
	if from != "INBOX" && strings.HasPrefix(to, from+"/") {
		// It would have to move into its own child (Dovecot refuses too).
		return no("CANNOT", "Cannot rename a mailbox under itself")
	}
	if err := c.user.Rename(c.ctx, from, to); err != nil {
		return c.mapErr(err)
	}
	c.renamedSelected(from, to)
	if err := c.createParents(to); err != nil {
		return err
	}
	c.ok(tag, "", "RENAME completed")
	return nil
}

// renamedSelected follows this session's own RENAME of its selected
// mailbox (or of a parent of it): a renamed mailbox keeps its UIDVALIDITY
// and messages, so the session stays on it under the new name instead of
// ending as if the mailbox had gone. (RENAME INBOX moves the messages
// out and leaves INBOX: the session stays on INBOX.)
func (c *conn) renamedSelected(from, to string) {
	m := c.mbox
	if m == nil || from == "INBOX" || !(m.name == from || strings.HasPrefix(m.name, from+"/")) {
		return
	}
	m.name = to + m.name[len(from):]
	m.ctx = withSelected(c.ctx, m.name, m.uidValidity)
}

func (c *conn) cmdSubscribe(tag string, s *scanner) error   { return c.subscribe(tag, s, true) }
func (c *conn) cmdUnsubscribe(tag string, s *scanner) error { return c.subscribe(tag, s, false) }

func (c *conn) subscribe(tag string, s *scanner, on bool) error {
	name, err := oneMailbox(s)
	if err != nil {
		return err
	}
	if err := c.user.Subscribe(c.ctx, name, on); err != nil && !(errors.Is(err, ErrNoMailbox) && !on) {
		return c.mapErr(err)
	}
	c.ok(tag, "", "Done")
	return nil
}

func (c *conn) cmdNamespace(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	c.writef("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n") // RFC 2342: one personal namespace
	c.ok(tag, "", "NAMESPACE completed")
	return nil
}

// statusItems are the STATUS data items we know (RFC 9051 §6.3.11,
// RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT).
var statusItems = []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT"}

func (c *conn) cmdStatus(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	name, err := s.mailbox()
	if err != nil {
		return err
	}
	if err := s.sp(); err != nil {
		return err
	}
	items, err := statusList(s)
	if err != nil {
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	st, err := c.user.Status(c.ctx, name)
	if err != nil {
		return c.mapErr(err)
	}
	c.writef("* STATUS %s (%s)\r\n", c.mailboxName(name), c.formatStatus(st, items))
	c.ok(tag, "", "STATUS completed")
	return nil
}

func statusList(s *scanner) ([]string, error) {
	var items []string
	err := s.list(func() error {
		a, err := s.atom()
		a = strings.ToUpper(a)
		if err == nil && !slices.Contains(statusItems, a) {
			err = syntaxf("unknown STATUS item %s", a)
		}
		items = append(items, a)
		return err
	})
	if err == nil && len(items) == 0 {
		err = syntaxf("empty STATUS list")
	}
	return items, err
}

func (c *conn) formatStatus(st Status, items []string) string {
	var out []string
	for _, it := range items {
		var v string
		switch it {
		case "MESSAGES":
			v = strconv.Itoa(st.Messages)
		case "UIDNEXT":
			v = strconv.FormatUint(uint64(st.UIDNext), 10)
		case "UIDVALIDITY":
			v = strconv.FormatUint(uint64(st.UIDValidity), 10)
		case "UNSEEN":
			v = strconv.Itoa(st.Unseen)
		case "DELETED":
			v = strconv.Itoa(st.Deleted)
		case "SIZE":
			v = strconv.FormatInt(st.Size, 10)
		case "RECENT":
			v = "0"
		case "HIGHESTMODSEQ":
			v = strconv.FormatUint(st.HighestModSeq, 10)
		case "APPENDLIMIT": // RFC 7889 §4: the same for every mailbox here
			v = strconv.FormatInt(c.s.opts.AppendLimit, 10)
		}
		out = append(out, it+" "+v)
	}
	return strings.Join(out, " ")
}

func (c *conn) cmdGetQuotaRoot(tag string, s *scanner) error {
	name, err := oneMailbox(s)
	if err != nil {
		return err
	}
	if _, err := c.user.Status(c.ctx, name); err != nil {
		return c.mapErr(err)
	}
	c.writef("* QUOTAROOT %s \"\"\r\n", c.mailboxName(name))
	if err := c.quotaResponse(); err != nil {
		return err
	}
	c.ok(tag, "", "GETQUOTAROOT completed")
	return nil
}

func (c *conn) cmdGetQuota(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	root, err := s.astring()
	if err == nil {
		err = s.crlf()
	}
	if err != nil {
		return err
	}
	if root != "" {
		return no("NONEXISTENT", "No such quota root")
	}
	if err := c.quotaResponse(); err != nil {
		return err
	}
	c.ok(tag, "", "GETQUOTA completed")
	return nil
}

// quotaResponse reports the one quota root "" (RFC 9208 §5.1, in KiB).
func (c *conn) quotaResponse() error {
	used, limit, err := c.user.Quota(c.ctx)
	if err != nil {
		return c.mapErr(err)
	}
	if limit <= 0 {
		c.writef("* QUOTA \"\" ()\r\n")
		return nil
	}
	c.writef("* QUOTA \"\" (STORAGE %d %d)\r\n", (used+1023)/1024, limit/1024)
	return nil
}
