package imap

import (
	"cmp"
	"errors"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"posthorn/internal/message"
)

// THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES.
//
//	thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria

func (c *conn) cmdThread(tag string, s *scanner, uid bool) error {
	if err := s.sp(); err != nil {
		return err
	}
	alg, err := s.atom()
	if err != nil {
		return err
	}
	alg = strings.ToUpper(alg)
	if alg != "ORDEREDSUBJECT" && alg != "REFERENCES" {
		return syntaxf("unknown threading algorithm")
	}
	hits, err := c.searchCriteria(s)
	if err != nil {
		return err
	}
	var msgs []*threadMsg
	for _, i := range hits {
		if err := c.alive(); err != nil {
			return err
		}
		m, err := c.threadFields(i)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	var roots []*threadNode
	if alg == "ORDEREDSUBJECT" {
		roots = orderedSubject(msgs)
	} else if roots, err = references(msgs); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("* THREAD") // RFC 5256 §4: "THREAD" [SP 1*thread-list]
	if len(roots) > 0 {
		b.WriteByte(' ')
	}
	for _, r := range roots {
		c.writeThreadList(&b, r, uid)
	}
	c.writef("%s\r\n", b.String())
	c.okNoExpunge(tag, "", "THREAD completed")
	return nil
}

// threadMsg is what threading needs of one message.
type threadMsg struct {
	seq        int // index in the mailbox
	id         string
	refs       []string // References, or the first In-Reply-To
	subject    string   // base subject
	reply      bool     // the subject had Re:, Fwd: or (fwd) removed
	date       time.Time
	hasSubject bool
}

// maxThreadRefs bounds the References taken from one message: only the
// last ones matter for its place, and each costs a walk up the tree.
const maxThreadRefs = 100

func (c *conn) threadFields(i int) (*threadMsg, error) {
	st := &searchState{c: c, i: i}
	head := st.loadHeader()
	if head == nil {
		if errors.Is(st.err, errExpungeIssued) { // gone meanwhile: a message without fields
			return &threadMsg{seq: i, date: c.mbox.msgs[i].InternalDate}, nil
		}
		return nil, st.err
	}
	defer head.release()
	h := head.root
	m := &threadMsg{seq: i, date: c.mbox.msgs[i].InternalDate}
	if t, err := mail.ParseDate(h.Get("Date")); err == nil {
		m.date = t
	}
	if ids := message.MessageIDs(h.Get("Message-ID")); len(ids) > 0 {
		m.id = ids[0]
	}
	m.refs = message.MessageIDs(h.Get("References"))
	if len(m.refs) == 0 {
		if ids := message.MessageIDs(h.Get("In-Reply-To")); len(ids) > 0 {
			m.refs = ids[:1]
		}
	}
	if len(m.refs) > maxThreadRefs {
		m.refs = m.refs[len(m.refs)-maxThreadRefs:]
	}
	m.subject, m.reply = baseSubjectReply(h.Get("Subject"))
	m.hasSubject = m.subject != ""
	return m, nil
}

// threadNode is a container of the REFERENCES algorithm: a message, or
// a dummy (msg nil) standing for one referred to but not present.
type threadNode struct {
	msg      *threadMsg
	parent   *threadNode
	children []*threadNode
}

func (n *threadNode) dummy() bool { return n.msg == nil }

// date is the sent date of a message, or of a dummy's first child.
func (n *threadNode) date() (time.Time, int) {
	for n.msg == nil && len(n.children) > 0 {
		n = n.children[0]
	}
	if n.msg == nil {
		return time.Time{}, 0
	}
	return n.msg.date, n.msg.seq
}

func compareNodes(a, b *threadNode) int {
	da, sa := a.date()
	db, sb := b.date()
	if r := da.Compare(db); r != 0 {
		return r
	}
	return cmp.Compare(sa, sb) // ties in mailbox order
}

// orderedSubject threads by base subject alone: messages sorted by base
// subject and sent date; each run of one subject is a thread, its first
// message the parent of the others; threads ordered by their first
// message's date.
func orderedSubject(msgs []*threadMsg) []*threadNode {
	sorted := slices.Clone(msgs)
	slices.SortStableFunc(sorted, func(a, b *threadMsg) int {
		if r := compareASCIICasemap(a.subject, b.subject); r != 0 {
			return r
		}
		if r := a.date.Compare(b.date); r != 0 {
			return r
		}
		return cmp.Compare(a.seq, b.seq)
	})
	var roots []*threadNode
	for i, m := range sorted {
		if i > 0 && compareASCIICasemap(m.subject, sorted[i-1].subject) == 0 {
			r := roots[len(roots)-1]
			r.children = append(r.children, &threadNode{msg: m, parent: r})
			continue
		}
		roots = append(roots, &threadNode{msg: m})
	}
	slices.SortStableFunc(roots, compareNodes)
	return roots
}

// threadWork bounds the steps up the tree that loop checks take in one
// THREAD: a mailbox built to make every check walk a long chain would
// otherwise hold a core for hours. Real mailboxes stay far below it.
const threadWork = 100_000_000

var errThreadWork = no("LIMIT", "Threads too deep to compute")

// references threads by References and In-Reply-To, then gathers the
// threads of one base subject (RFC 5256 §3, REFERENCES steps 1 to 6).
func references(msgs []*threadMsg) ([]*threadNode, error) {
	work := 0
	// loops reports whether making child a child of parent would close
	// a loop: whether parent is child or below it. A child without
	// children of its own cannot be above anything.
	loops := func(parent, child *threadNode) bool {
		if len(child.children) == 0 {
			return parent == child
		}
		for x := parent; x != nil; x = x.parent {
			if work++; x == child {
				return true
			}
		}
		return false
	}
	byID := map[string]*threadNode{}
	node := func(id string) *threadNode {
		n := byID[id]
		if n == nil {
			n = &threadNode{}
			byID[id] = n
		}
		return n
	}
	var all []*threadNode // every container, in creation order (deterministic)
	uniq := 0
	for _, m := range msgs {
		// Step 1A: a missing or repeated Message-ID gets a unique one.
		id := m.id
		if id == "" || byID[id] != nil && byID[id].msg != nil {
			uniq++
			id = "\x00" + strconv.Itoa(uniq)
		}
		cur := node(id)
		cur.msg = m
		// Step 1B: link each reference to the next, unless that loops or
		// the child has a parent already.
		var prev *threadNode
		for _, r := range m.refs {
			n := node(r)
			if prev != nil && n.parent == nil && !loops(prev, n) {
				adopt(prev, n)
			}
			prev = n
		}
		if work > threadWork {
			return nil, errThreadWork
		}
		// Step 1C: the last reference is the message's parent, unless
		// that loops.
		if cur.parent != nil {
			unlink(cur)
		}
		if prev != nil && !loops(prev, cur) {
			adopt(prev, cur)
		}
	}
	for _, n := range byID {
		all = append(all, n)
	}
	// Step 2: the root set.
	var roots []*threadNode
	for _, n := range all {
		if n.parent == nil {
			roots = append(roots, n)
		}
	}
	slices.SortStableFunc(roots, compareNodes) // a stable start for the map's order
	// Step 3: prune dummies.
	roots = pruneList(roots, true)
	for _, r := range roots {
		r.parent = nil
	}
	// Step 4: sort the root set by date.
	sortTree(roots)
	slices.SortStableFunc(roots, compareNodes)
	// Step 5: gather threads of one base subject.
	roots = gatherSubjects(roots)
	// Step 6: siblings by date.
	sortTree(roots)
	return roots, nil
}

func adopt(parent, child *threadNode) {
	child.parent = parent
	parent.children = append(parent.children, child)
}

func unlink(n *threadNode) {
	p := n.parent
	p.children = slices.DeleteFunc(p.children, func(c *threadNode) bool { return c == n })
	n.parent = nil
}

// pruneList applies step 3 to a list of siblings: an empty dummy goes; a
// dummy's children take its place, except a root dummy with several.
func pruneList(list []*threadNode, root bool) []*threadNode {
	var out []*threadNode
	for _, n := range list {
		n.children = pruneList(n.children, false)
		for _, c := range n.children {
			c.parent = n
		}
		switch {
		case !n.dummy():
			out = append(out, n)
		case len(n.children) == 0:
		case root && len(n.children) > 1:
			out = append(out, n)
		default:
			for _, c := range n.children {
				c.parent = n.parent
			}
			out = append(out, n.children...)
		}
	}
	return out
}

func sortTree(list []*threadNode) {
	for _, n := range list {
		sortTree(n.children)
		slices.SortStableFunc(n.children, compareNodes)
	}
}

// subjectOf is a thread's base subject (a dummy's first child's) and
// whether it was a reply.
func (n *threadNode) subjectOf() (string, bool) {
	for n.msg == nil && len(n.children) > 0 {
		n = n.children[0]
	}
	if n.msg == nil {
		return "", false
	}
	return n.msg.subject, n.msg.reply
}

// gatherSubjects is step 5: threads in the root set with one base
// subject are merged.
func gatherSubjects(roots []*threadNode) []*threadNode {
	table := map[string]*threadNode{}
	for _, r := range roots {
		subj, reply := r.subjectOf()
		if subj == "" {
			continue
		}
		// Step 5C: a dummy is preferred, then a thread that is no reply.
		key := upperASCIIString(subj) // i;ascii-casemap
		old := table[key]
		_, oldReply := old.subjectOfOrEmpty()
		switch {
		case old == nil:
		case r.dummy() && !old.dummy():
		case !old.dummy() && oldReply && !reply:
		default:
			continue
		}
		table[key] = r
	}
	var out []*threadNode
	gone := map[*threadNode]bool{}
	for i, r := range roots {
		if gone[r] {
			continue
		}
		subj, reply := r.subjectOf()
		t := table[upperASCIIString(subj)]
		if subj == "" || t == nil || t == r {
			out = append(out, r)
			continue
		}
		_, tReply := t.subjectOf()
		gone[r] = true
		switch {
		case t.dummy() && r.dummy():
			for _, c := range r.children {
				adopt(t, c)
			}
		case t.dummy():
			adopt(t, r)
		case reply && !tReply:
			adopt(t, r)
		default:
			d := &threadNode{}
			// The dummy takes t's place in the root set.
			for j, x := range out {
				if x == t {
					out[j] = d
				}
			}
			for j := i + 1; j < len(roots); j++ {
				if roots[j] == t {
					roots[j] = d
				}
			}
			adopt(d, t)
			adopt(d, r)
			table[upperASCIIString(subj)] = d
		}
	}
	return out
}

func (n *threadNode) subjectOfOrEmpty() (string, bool) {
	if n == nil {
		return "", false
	}
	return n.subjectOf()
}

// writeThreadList writes one thread-list: a chain of single children as
// "1 2 3", several children as nested lists.
func (c *conn) writeThreadList(b *strings.Builder, n *threadNode, uid bool) {
	b.WriteByte('(')
	first := true
	for {
		if !n.dummy() {
			if !first {
				b.WriteByte(' ')
			}
			first = false
			id := uint32(n.msg.seq + 1)
			if uid {
				id = c.mbox.msgs[n.msg.seq].UID
			}
			b.WriteString(strconv.FormatUint(uint64(id), 10))
		}
		if len(n.children) != 1 || n.dummy() {
			break
		}
		n = n.children[0]
	}
	if len(n.children) > 0 {
		if !first {
			b.WriteByte(' ')
		}
		for _, ch := range n.children {
			c.writeThreadList(b, ch, uid)
		}
	}
	b.WriteByte(')')
}

// upperASCIIString upper-cases a-z only: i;ascii-casemap (RFC 4790 §9.2),
// which SORT and THREAD compare with; Unicode case mapping would make
// "ſ" equal "S".
func upperASCIIString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = upperASCII(c)
	}
	return string(b)
}
