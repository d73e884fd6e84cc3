package imap

import (
	"cmp"
	"slices"
	"strings"
)

// listOptions are LIST-EXTENDED options (RFC 5258, RFC 5819, RFC 6154).
type listOptions struct {
	subscribedOnly, specialOnly, recursive bool // selection
	retSubscribed, retChildren, retSpecial bool // return
	status                                 []string
	lsub                                   bool
	// extended: the command has selection or return options or a list
	// of patterns, the forms of RFC 5258 §3, whose clients know
	// \NonExistent.
	extended bool
}

// selecting reports whether LIST names only some mailboxes.
func (o listOptions) selecting() bool { return o.subscribedOnly || o.specialOnly }

// selects reports whether a mailbox meets the selection criteria.
func (o listOptions) selects(b MailboxInfo) bool {
	return !(o.subscribedOnly && !b.Subscribed || o.specialOnly && b.SpecialUse == "")
}

// criteria names the selection criteria for CHILDINFO (RFC 5258 §3).
func (o listOptions) criteria() string {
	var cs []string
	if o.subscribedOnly {
		cs = append(cs, `"SUBSCRIBED"`)
	}
	if o.specialOnly {
		cs = append(cs, `"SPECIAL-USE"`)
	}
	return strings.Join(cs, " ")
}

func (c *conn) cmdLsub(tag string, s *scanner) error {
	return c.list(tag, s, listOptions{subscribedOnly: true, lsub: true})
}

func (c *conn) cmdList(tag string, s *scanner) error { return c.list(tag, s, listOptions{}) }

// list runs LIST and LSUB (RFC 9051 §6.3.9).
func (c *conn) list(tag string, s *scanner, o listOptions) error {
	if err := s.sp(); err != nil {
		return err
	}
	if b, _ := s.peek(); b == '(' && !o.lsub {
		if err := parseSelectOpts(s, &o); err != nil {
			return err
		}
		if err := s.sp(); err != nil {
			return err
		}
		o.extended = true
	}
	ref, err := s.astring()
	if err != nil {
		return err
	}
	if err := s.sp(); err != nil {
		return err
	}
	if b, _ := s.peek(); b == '(' {
		o.extended = true
	}
	pats, err := c.patterns(s)
	if err != nil {
		return err
	}
	if !o.lsub && s.maybeSP() {
		if err := parseReturnOpts(s, &o); err != nil {
			return err
		}
		o.extended = true
	}
	if err := s.crlf(); err != nil {
		return err
	}
	if len(pats) == 1 && pats[0] == "" && !o.lsub {
		c.writef("* LIST (\\Noselect) \"/\" \"\"\r\n") // the hierarchy delimiter
		c.ok(tag, "", "LIST completed")
		return nil
	}
	if err := c.listMatches(ref, pats, o); err != nil {
		return err
	}
	c.ok(tag, "", "LIST completed")
	return nil
}

// parseSelectOpts reads LIST-EXTENDED selection options. RECURSIVEMATCH
// qualifies another option, so alone (or with only REMOTE) it is BAD
// (RFC 5258 §3).
func parseSelectOpts(s *scanner, o *listOptions) error {
	err := s.list(func() error {
		a, err := s.atom()
		switch strings.ToUpper(a) {
		case "SUBSCRIBED":
			o.subscribedOnly, o.retSubscribed = true, true
		case "SPECIAL-USE":
			o.specialOnly, o.retSpecial = true, true
		case "RECURSIVEMATCH":
			o.recursive = true
		case "REMOTE":
		default:
			if err == nil {
				err = syntaxf("unknown LIST option %s", a)
			}
		}
		return err
	})
	if err == nil && o.recursive && !o.selecting() {
		err = syntaxf("RECURSIVEMATCH needs another selection option")
	}
	return err
}

func parseReturnOpts(s *scanner, o *listOptions) error {
	a, err := s.atom()
	if err != nil || !strings.EqualFold(a, "RETURN") {
		return syntaxf("expected RETURN")
	}
	if err := s.sp(); err != nil {
		return err
	}
	return s.list(func() error {
		a, err := s.atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "SUBSCRIBED":
			o.retSubscribed = true
		case "CHILDREN":
			o.retChildren = true
		case "SPECIAL-USE":
			o.retSpecial = true
		case "STATUS": // RFC 5819
			if err := s.sp(); err != nil {
				return err
			}
			o.status, err = statusList(s)
			return err
		default:
			return syntaxf("unknown RETURN option %s", a)
		}
		return nil
	})
}

// patterns reads one mailbox pattern or a list of them, as list-mailbox
// (atoms may hold % and *).
func (c *conn) patterns(s *scanner) ([]string, error) {
	one := func() (string, error) {
		b, err := s.peek()
		if err != nil {
			return "", err
		}
		var p string
		if b == '"' || b == '{' {
			p, err = s.str()
		} else {
			p, err = s.listAtom()
		}
		if err == nil && !c.utf8 {
			if d, derr := decodeUTF7(p); derr == nil {
				p = d
			}
		}
		return p, err
	}
	if b, _ := s.peek(); b == '(' {
		var pats []string
		err := s.list(func() error {
			p, err := one()
			pats = append(pats, p)
			return err
		})
		return pats, err
	}
	p, err := one()
	return []string{p}, err
}

// listAtom reads list-char: ATOM-CHAR, "%", "*" and "]".
func (s *scanner) listAtom() (string, error) {
	var b strings.Builder
	for {
		c, err := s.peek()
		if err != nil {
			return "", err
		}
		if !(isAtomChar(c, true) || c == '%' || c == '*') {
			break
		}
		_, _ = s.next()
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "", syntaxf("expected a mailbox pattern")
	}
	return b.String(), nil
}

// listMatches writes a LIST (or LSUB) line for each mailbox matching, and
// for each matching name that stands for deeper names the patterns miss.
func (c *conn) listMatches(ref string, pats []string, o listOptions) error {
	if len(pats) > maxListPatterns {
		return no("LIMIT", "Too many LIST patterns")
	}
	boxes, err := c.user.Mailboxes(c.ctx)
	if err != nil {
		return c.mapErr(err)
	}
	entries, below, err := listEntries(boxes, newListMatcher(ref, pats), o)
	if err != nil {
		return err
	}
	parents := parentNames(boxes)
	for _, e := range entries {
		c.writeEntry(e, parents[e.Name], below[e.Name], o)
	}
	return nil
}

// writeEntry writes what one matching name gets. below: the name has a
// descendant that meets the selection criteria but no pattern, a level a
// "%" stopped at. Plain LIST and LSUB return such a level so that a
// client browsing with "%" finds the way down (RFC 3501 §6.3.8, §6.3.9);
// with RECURSIVEMATCH it carries CHILDINFO (RFC 5258 §3, §4; RFC 9051
// §6.3.9's table), and without it a selection names only what it selects.
func (c *conn) writeEntry(e listEntry, hasChildren, below bool, o listOptions) {
	switch {
	case !e.matched:
	case e.NonExistent:
		if o.selects(e.MailboxInfo) { // never for SPECIAL-USE: it has none
			c.writeLone(e.Name, hasChildren, o, below && o.recursive)
		}
	case e.exists && o.selects(e.MailboxInfo):
		c.writeList(e.MailboxInfo, hasChildren, o, below && o.recursive)
	case !below:
	case o.lsub || !e.exists && !o.selecting():
		c.writeLevel(e.Name, o)
	case o.recursive && e.exists:
		c.writeList(e.MailboxInfo, hasChildren, o, true)
	case o.recursive:
		c.writeLevel(e.Name, o)
	}
}

// listEntry is one name LIST may answer for: a mailbox, or a name that
// is only an ancestor of mailboxes, as DELETE of "a" leaves when "a/b"
// exists (RFC 9051 §6.3.4).
type listEntry struct {
	MailboxInfo
	exists, matched bool
}

// listEntries matches the mailboxes, marks in below the ancestors of those
// that meet the selection criteria but no pattern, and adds the matching
// ancestors that are no mailbox, in the store's order (INBOX, then by
// name) so that they sit where the mailbox would.
func listEntries(boxes []MailboxInfo, m *listMatcher, o listOptions) ([]listEntry, map[string]bool, error) {
	out := make([]listEntry, 0, len(boxes))
	exists := make(map[string]bool, len(boxes))
	below := map[string]bool{}
	lone := false // subscriptions alone, which follow the mailboxes
	for _, b := range boxes {
		if b.NonExistent && !o.subscribedOnly {
			continue // a subscription alone is no mailbox to LIST
		}
		lone = lone || b.NonExistent
		ok, err := m.matches(b.Name)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, listEntry{MailboxInfo: b, exists: !b.NonExistent, matched: ok})
		exists[b.Name] = true // listed: no placeholder level for it
		if !ok && o.selects(b) {
			markAncestors(below, b.Name)
		}
	}
	n := len(out)
	for name := range below {
		if exists[name] {
			continue
		}
		ok, err := m.matches(name)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, listEntry{MailboxInfo: MailboxInfo{Name: name}, matched: true})
		}
	}
	if len(out) > n || lone {
		slices.SortStableFunc(out, listOrder)
	}
	return out, below, nil
}

// listOrder is the store's order: INBOX first, then by name (bytes).
func listOrder(a, b listEntry) int {
	return cmp.Or(inboxRank(a.Name)-inboxRank(b.Name), strings.Compare(a.Name, b.Name))
}

func inboxRank(name string) int {
	if name == "INBOX" {
		return 0
	}
	return 1
}

// markAncestors sets set[a] for each ancestor a of name ("a" for "a/b").
func markAncestors(set map[string]bool, name string) {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == '/' {
			if set[name[:i]] {
				return // and so are its own ancestors
			}
			set[name[:i]] = true
		}
	}
}

// maxListPatterns bounds the patterns of one LIST (RFC 5258 allows a
// list); listWork bounds the comparison steps of one LIST, so that long
// patterns against thousands of long names cannot hold a core for
// minutes: clients use a few short patterns, far below it.
const (
	maxListPatterns = 100
	listWork        = 200_000_000
)

// listMatcher holds the patterns of one LIST, prepared once.
type listMatcher struct {
	pats []listPattern
	work int
}

type listPattern struct {
	runes  []rune
	prefix string // the literal text before the first wildcard
	inbox  bool   // begins with "INBOX" in any case: matches INBOX so
}

func newListMatcher(ref string, pats []string) *listMatcher {
	m := &listMatcher{}
	for _, p := range pats {
		full := collapseWildcards(ref + p)
		lp := listPattern{runes: []rune(full), inbox: len(full) >= 5 && strings.EqualFold(full[:5], "INBOX")}
		lp.prefix, _, _ = strings.Cut(full, "*")
		lp.prefix, _, _ = strings.Cut(lp.prefix, "%")
		m.pats = append(m.pats, lp)
	}
	return m
}

// matches reports whether name matches any pattern; past listWork steps
// it gives up with a NO [LIMIT].
func (m *listMatcher) matches(name string) (bool, error) {
	var n []rune
	for _, p := range m.pats {
		pr := p.runes
		if name == "INBOX" && p.inbox {
			pr = append([]rune("INBOX"), pr[5:]...) // INBOX is case-insensitive
		} else if !strings.HasPrefix(name, p.prefix) {
			continue
		}
		if n == nil {
			n = []rune(name)
		}
		if m.work += len(pr) * (len(n) + 1); m.work > listWork {
			return false, no("LIMIT", "LIST patterns too complex")
		}
		if match(pr, n) {
			return true, nil
		}
	}
	return false, nil
}

// collapseWildcards turns each run of wildcards into one: "**", "*%" and
// "%*" match what "*" does, "%%" what "%" does.
func collapseWildcards(p string) string {
	if !strings.Contains(p, "**") && !strings.Contains(p, "%%") && !strings.Contains(p, "*%") && !strings.Contains(p, "%*") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		if p[i] != '*' && p[i] != '%' {
			b.WriteByte(p[i])
			i++
			continue
		}
		j, star := i, false
		for j < len(p) && (p[j] == '*' || p[j] == '%') {
			star = star || p[j] == '*'
			j++
		}
		if star {
			b.WriteByte('*')
		} else {
			b.WriteByte('%')
		}
		i = j
	}
	return b.String()
}

// parentNames returns the names that have children ("a" for "a/b"):
// mailboxes, not subscriptions alone.
func parentNames(boxes []MailboxInfo) map[string]bool {
	out := map[string]bool{}
	for _, b := range boxes {
		if !b.NonExistent {
			markAncestors(out, b.Name)
		}
	}
	return out
}

// writeList writes a mailbox's line, and its STATUS when asked.
func (c *conn) writeList(b MailboxInfo, hasChildren bool, o listOptions, childInfo bool) {
	var attrs []string
	if hasChildren {
		attrs = append(attrs, `\HasChildren`)
	} else {
		attrs = append(attrs, `\HasNoChildren`)
	}
	if b.SpecialUse != "" && (o.retSpecial || !o.lsub) {
		attrs = append(attrs, b.SpecialUse)
	}
	if b.Subscribed && o.retSubscribed {
		attrs = append(attrs, `\Subscribed`)
	}
	c.writeLine(attrs, b.Name, o, childInfo)
	if len(o.status) > 0 {
		if st, err := c.user.Status(c.ctx, b.Name); err == nil {
			c.writef("* STATUS %s (%s)\r\n", c.mailboxName(b.Name), c.formatStatus(st, o.status))
		}
	}
}

// writeLevel writes the line of a name that is listed only for what is
// below it. LSUB and IMAP4rev1 say \Noselect (RFC 3501 §6.3.8, §6.3.9: in
// LSUB even of a mailbox, that is not subscribed); IMAP4rev2 and
// LIST-EXTENDED say \NonExistent, which implies it (RFC 9051 §7.3.1, RFC
// 5258 §3). It has children by construction. No STATUS: it is no
// mailbox to count, and a LSUB \Noselect one is not what was asked for
// (RFC 5819 §2 omits STATUS for \Noselect and \NonExistent names).
func (c *conn) writeLevel(name string, o listOptions) {
	attr := `\NonExistent`
	if o.lsub || !c.rev2 && !o.extended {
		attr = `\Noselect`
	}
	c.writeLine([]string{attr, `\HasChildren`}, name, o, o.recursive)
}

// writeLone writes a subscribed name that is no mailbox: \NonExistent
// \Subscribed for LIST (SUBSCRIBED) (RFC 5258 §3), \Noselect for LSUB
// (RFC 3501 §6.3.9). No STATUS (RFC 5819 §2).
func (c *conn) writeLone(name string, hasChildren bool, o listOptions, childInfo bool) {
	attrs := []string{`\NonExistent`}
	if o.lsub {
		attrs = []string{`\Noselect`}
	}
	if hasChildren {
		attrs = append(attrs, `\HasChildren`)
	}
	if o.retSubscribed {
		attrs = append(attrs, `\Subscribed`)
	}
	c.writeLine(attrs, name, o, childInfo)
}

// writeLine writes one LIST or LSUB line; childInfo adds the CHILDINFO
// extended data item: a descendant meets the selection criteria (RFC
// 5258 §3, §4).
func (c *conn) writeLine(attrs []string, name string, o listOptions, childInfo bool) {
	verb, ext := "LIST", ""
	if o.lsub {
		verb = "LSUB"
	}
	if childInfo {
		ext = ` ("CHILDINFO" (` + o.criteria() + `))`
	}
	c.writef("* %s (%s) \"/\" %s%s\r\n", verb, strings.Join(attrs, " "), c.mailboxName(name), ext)
}

// match matches a LIST pattern: "*" any run, "%" any run without "/"
// (RFC 9051 §6.3.9). Dynamic programming: no exponential backtracking.
func match(p, n []rune) bool {
	prev := make([]bool, len(n)+1)
	cur := make([]bool, len(n)+1)
	prev[0] = true
	for i := 1; i <= len(p); i++ {
		cur[0] = prev[0] && (p[i-1] == '*' || p[i-1] == '%')
		for j := 1; j <= len(n); j++ {
			switch p[i-1] {
			case '*':
				cur[j] = prev[j] || cur[j-1]
			case '%':
				cur[j] = prev[j] || cur[j-1] && n[j-1] != '/'
			default:
				cur[j] = prev[j-1] && p[i-1] == n[j-1]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(n)]
}
