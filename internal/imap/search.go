package imap

import (
	"bytes"
	"errors"
	"mime"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"posthorn/internal/message"
)

// searchKey is one node of a search program (RFC 9051 §6.4.4).
type searchKey struct {
	op   string
	str  string // string argument (lower-cased) or header field
	str2 string
	n    int64
	date time.Time
	set  *seqSet
	kids []*searchKey
}

// searchReturn are ESEARCH return options (RFC 4731).
type searchReturn struct {
	on                   bool
	min, max, all, count bool
}

func (c *conn) cmdSearch(tag string, s *scanner, uid bool) error {
	if err := s.sp(); err != nil {
		return err
	}
	ret, keys, err := c.searchArgs(s)
	if err != nil {
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	hits, usesModseq, err := c.runSearch(keys)
	if err != nil {
		return err
	}
	c.searchResponse(tag, hits, uid, ret, usesModseq)
	c.okNoExpunge(tag, "", "SEARCH completed")
	return nil
}

// runSearch evaluates a search program (SEARCH, SORT, THREAD) over the
// selected mailbox and returns the matching messages' indexes, and
// whether it uses MODSEQ (which turns CONDSTORE on, RFC 7162 §3.1).
func (c *conn) runSearch(keys []*searchKey) (hits []int, modseq bool, err error) {
	root := &searchKey{op: "AND", kids: keys}
	if root.countKeys("BODY", "TEXT") > maxBodyKeys {
		return nil, false, no("LIMIT", "Too many BODY and TEXT keys in one search")
	}
	if modseq = root.uses("MODSEQ"); modseq {
		c.condstore = true
	}
	for i := range c.mbox.msgs {
		if err := c.alive(); err != nil {
			return nil, false, err // shutdown, or the client has gone
		}
		ok, err := c.matches(root, i)
		if err != nil {
			return nil, false, err
		}
		if ok {
			hits = append(hits, i)
		}
	}
	return hits, modseq, nil
}

// searchArgs reads [RETURN (…) SP] [CHARSET x SP] key *(SP key). The
// first words are read as atoms and told apart afterwards.
func (c *conn) searchArgs(s *scanner) (searchReturn, []*searchKey, error) {
	var ret searchReturn
	var keys []*searchKey
	first, second := true, true
	for {
		k, word, err := nextSearchKey(s)
		if err != nil {
			return ret, nil, err
		}
		switch {
		case first && word == "RETURN":
			if ret, err = searchReturnOpts(s); err != nil {
				return ret, nil, err
			}
			first = false
			continue
		case (first || second) && word == "CHARSET":
			if err := searchCharset(s); err != nil {
				return ret, nil, err
			}
			first, second = false, false
			continue
		}
		if k == nil { // RFC 4731, RFC 9051 §6.4.4: both come before the keys
			return ret, nil, syntaxf("%s is not a search key here", word)
		}
		first, second = false, false
		keys = append(keys, k)
		if !s.maybeSP() {
			return ret, keys, nil
		}
	}
}

// nextSearchKey parses one key; for an atom key it also returns the word
// so that RETURN and CHARSET can be recognised.
func nextSearchKey(s *scanner) (*searchKey, string, error) {
	b, err := s.peek()
	if err != nil {
		return nil, "", err
	}
	if b == '(' || b >= '0' && b <= '9' || b == '*' {
		k, err := parseSearchKey(s)
		return k, "", err
	}
	a, err := s.atom()
	if err != nil {
		return nil, "", err
	}
	word := strings.ToUpper(a)
	if word == "RETURN" || word == "CHARSET" {
		return nil, word, nil
	}
	k, err := parseKeyArgs(s, word)
	return k, word, err
}

// searchReturnOpts reads " (…) " after RETURN (RFC 4731).
func searchReturnOpts(s *scanner) (searchReturn, error) {
	r := searchReturn{on: true}
	if err := s.sp(); err != nil {
		return r, err
	}
	err := s.list(func() error {
		a, err := s.atom()
		switch strings.ToUpper(a) {
		case "MIN":
			r.min = true
		case "MAX":
			r.max = true
		case "ALL":
			r.all = true
		case "COUNT":
			r.count = true
		default:
			if err == nil {
				err = syntaxf("unknown RETURN option")
			}
		}
		return err
	})
	if err == nil && !r.min && !r.max && !r.count {
		r.all = true // RETURN () means ALL
	}
	if err == nil {
		err = s.sp()
	}
	return r, err
}

// searchCharset reads " charset SP"; only UTF-8 and US-ASCII are known.
func searchCharset(s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	return sortCharset(s)
}

// Keys without arguments, and those with one string.
var (
	flagKeys   = map[string]bool{"ALL": true, "ANSWERED": true, "DELETED": true, "DRAFT": true, "FLAGGED": true, "SEEN": true, "UNANSWERED": true, "UNDELETED": true, "UNDRAFT": true, "UNFLAGGED": true, "UNSEEN": true, "NEW": true, "OLD": true, "RECENT": true}
	stringKeys = map[string]bool{"BCC": true, "CC": true, "FROM": true, "SUBJECT": true, "TO": true, "BODY": true, "TEXT": true, "KEYWORD": true, "UNKEYWORD": true}
	dateKeys   = map[string]bool{"BEFORE": true, "ON": true, "SINCE": true, "SENTBEFORE": true, "SENTON": true, "SENTSINCE": true}
)

func parseSearchKey(s *scanner) (*searchKey, error) {
	if b, err := s.peek(); err != nil {
		return nil, err
	} else if b == '(' {
		k := &searchKey{op: "AND"}
		err := s.list(func() error {
			kid, err := parseSearchKey(s)
			k.kids = append(k.kids, kid)
			return err
		})
		return k, err
	} else if b >= '0' && b <= '9' || b == '*' {
		set, err := seqArg(s)
		return &searchKey{op: "SEQ", set: set}, err
	}
	a, err := s.atom()
	if err != nil {
		return nil, err
	}
	op := strings.ToUpper(a)
	return parseKeyArgs(s, op)
}

func parseKeyArgs(s *scanner, op string) (*searchKey, error) {
	k := &searchKey{op: op}
	var err error
	switch {
	case flagKeys[op]:
	case stringKeys[op]:
		err = s.sp()
		if err == nil {
			k.str, err = s.astring()
		}
	case dateKeys[op]:
		err = s.sp()
		if err == nil {
			k.date, err = s.date()
		}
	case op == "HEADER":
		if err = s.sp(); err == nil {
			if k.str, err = s.astring(); err == nil {
				if err = s.sp(); err == nil {
					k.str2, err = s.astring()
				}
			}
		}
	case op == "LARGER" || op == "SMALLER":
		if err = s.sp(); err == nil {
			k.n, err = s.number64()
		}
	case op == "UID":
		if err = s.sp(); err == nil {
			k.set, err = seqArg(s)
		}
	case op == "NOT":
		return unaryKey(s, k)
	case op == "OR":
		return binaryKey(s, k)
	case op == "MODSEQ":
		return modseqKey(s, k)
	default:
		return nil, syntaxf("unknown search key %s", op)
	}
	return k, err
}

func unaryKey(s *scanner, k *searchKey) (*searchKey, error) {
	if s.depth++; s.depth > maxDepth {
		return nil, syntaxf("search too deeply nested")
	}
	defer func() { s.depth-- }()
	if err := s.sp(); err != nil {
		return nil, err
	}
	kid, err := parseSearchKey(s)
	k.kids = []*searchKey{kid}
	return k, err
}

func binaryKey(s *scanner, k *searchKey) (*searchKey, error) {
	if s.depth++; s.depth > maxDepth {
		return nil, syntaxf("search too deeply nested")
	}
	defer func() { s.depth-- }()
	for range 2 {
		if err := s.sp(); err != nil {
			return nil, err
		}
		kid, err := parseSearchKey(s)
		if err != nil {
			return nil, err
		}
		k.kids = append(k.kids, kid)
	}
	return k, nil
}

// modseqKey reads MODSEQ [entry-name entry-type] n (RFC 7162 §3.1.5).
func modseqKey(s *scanner, k *searchKey) (*searchKey, error) {
	if err := s.sp(); err != nil {
		return nil, err
	}
	if b, _ := s.peek(); b == '"' {
		// entry-name is "/flags/" attr-flag; entry-type-req is priv,
		// shared or all. Flags have one MODSEQ here, so both only need
		// to be well formed.
		name, err := s.quoted()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(strings.ToLower(name), "/flags/") || len(name) == len("/flags/") {
			return nil, syntaxf("MODSEQ entry name must be /flags/<flag>")
		}
		if err := s.sp(); err != nil {
			return nil, err
		}
		typ, err := s.atom()
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(typ) {
		case "priv", "shared", "all":
		default:
			return nil, syntaxf("MODSEQ entry type must be priv, shared or all")
		}
		if err := s.sp(); err != nil {
			return nil, err
		}
	}
	var err error
	k.n, err = s.number64()
	return k, err
}

func (k *searchKey) uses(op string) bool {
	if k.op == op {
		return true
	}
	for _, kid := range k.kids {
		if kid.uses(op) {
			return true
		}
	}
	return false
}

// searchState carries a message's lazily loaded content.
type searchState struct {
	c       *conn
	i       int
	msg     *fetchedMessage // the whole message, once a key needs it
	head    *fetchedMessage // the header section alone
	lowered map[*message.Part][]byte
	err     error
}

func (c *conn) matches(k *searchKey, i int) (bool, error) {
	st := &searchState{c: c, i: i}
	ok := st.eval(k)
	if st.msg != nil {
		st.msg.release()
	}
	if st.head != nil {
		st.head.release()
	}
	if errors.Is(st.err, errExpungeIssued) {
		return false, nil // gone meanwhile: matches nothing (RFC 2180 §4.3)
	}
	return ok, st.err
}

func (st *searchState) eval(k *searchKey) bool {
	m := st.c.mbox.msgs[st.i]
	switch k.op {
	case "AND":
		for _, kid := range k.kids {
			if !st.eval(kid) {
				return false
			}
		}
		return true
	case "NOT":
		return !st.eval(k.kids[0])
	case "OR":
		return st.eval(k.kids[0]) || st.eval(k.kids[1])
	case "SEQ":
		return k.set.contains(uint32(st.i+1), uint32(len(st.c.mbox.msgs)))
	case "UID":
		return k.set.contains(m.UID, st.c.mbox.maxUID())
	case "LARGER":
		return m.Size > k.n
	case "SMALLER":
		return m.Size < k.n
	case "MODSEQ":
		return int64(m.ModSeq) >= k.n
	}
	if v, ok := flagMatch(k, m); ok {
		return v
	}
	if dateKeys[k.op] {
		return st.dateMatch(k, m)
	}
	return st.textMatch(k)
}

// flagMatch evaluates flag keys; ok is false for other keys.
func flagMatch(k *searchKey, m Meta) (bool, bool) {
	has := func(f string) bool { return containsFold(m.Flags, f) }
	switch k.op {
	case "ALL", "OLD":
		return true, true
	case "NEW", "RECENT": // \Recent is not kept (RFC 9051 removed it)
		return false, true
	case "KEYWORD":
		return has(k.str), true
	case "UNKEYWORD":
		return !has(k.str), true
	}
	flag := map[string]string{"ANSWERED": `\Answered`, "DELETED": `\Deleted`, "DRAFT": `\Draft`, "FLAGGED": `\Flagged`, "SEEN": `\Seen`}
	if f, ok := flag[k.op]; ok {
		return has(f), true
	}
	if f, ok := flag[strings.TrimPrefix(k.op, "UN")]; ok && strings.HasPrefix(k.op, "UN") {
		return !has(f), true
	}
	return false, false
}

// dateMatch compares dates, disregarding time and time zone (RFC 9051
// §6.4.4): INTERNALDATE for BEFORE/ON/SINCE, the Date field for SENT*.
func (st *searchState) dateMatch(k *searchKey, m Meta) bool {
	d := m.InternalDate
	if strings.HasPrefix(k.op, "SENT") {
		msg := st.loadHeader()
		if msg == nil {
			return false
		}
		t, err := mail.ParseDate(msg.root.Get("Date"))
		if err != nil {
			return false
		}
		d = t
	}
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	want := time.Date(k.date.Year(), k.date.Month(), k.date.Day(), 0, 0, 0, 0, time.UTC)
	switch strings.TrimPrefix(k.op, "SENT") {
	case "BEFORE":
		return day.Before(want)
	case "ON":
		return day.Equal(want)
	}
	return !day.Before(want) // SINCE
}

// loadHeader returns the header section, or the whole message if that is
// loaded already.
func (st *searchState) loadHeader() *fetchedMessage {
	if st.msg != nil {
		return st.msg
	}
	if st.head == nil && st.err == nil {
		st.head, st.err = st.c.loadHeader(st.c.mbox.msgs[st.i])
	}
	return st.head
}

func (st *searchState) load() *fetchedMessage {
	if st.msg == nil && st.err == nil {
		st.msg, st.err = st.c.loadMessage(st.c.mbox.msgs[st.i])
	}
	return st.msg
}

// textMatch evaluates header, BODY and TEXT keys: case-insensitive
// substring, on decoded header values and decoded text parts.
func (st *searchState) textMatch(k *searchKey) bool {
	needle := strings.ToLower(k.str)
	if k.op == "BODY" || k.op == "TEXT" {
		msg := st.load()
		if msg == nil {
			return false
		}
		if k.op == "TEXT" && headerHas(msg.root, "", needle) {
			return true
		}
		return st.bodyHas(msg, msg.root, needle)
	}
	head := st.loadHeader()
	if head == nil {
		return false
	}
	if k.op == "HEADER" {
		return headerHas(head.root, k.str, strings.ToLower(k.str2))
	}
	return headerHas(head.root, k.op, needle)
}

var wordDecoder = mime.WordDecoder{CharsetReader: nil}

// headerHas looks for needle in field (all fields when field is "").
// Field names are ASCII (RFC 5322 §2.2), so a length check comes first.
func headerHas(p *message.Part, field, needle string) bool {
	for _, f := range p.Header {
		if field != "" && (len(f.Name) != len(field) || !strings.EqualFold(f.Name, field)) {
			continue
		}
		v := f.Value
		if strings.Contains(v, "=?") { // RFC 2047 encoded words
			if d, err := wordDecoder.DecodeHeader(v); err == nil {
				v = d
			}
		}
		if hasFold(v, needle) {
			return true
		}
	}
	return false
}

// hasFold reports whether s contains needle, which is in lower case,
// ignoring case. An ASCII needle is matched with ASCII case folding
// (what RFC 9051 §6.4.4 asks for) without copying s; any other with
// Unicode lower-casing.
func hasFold(s, needle string) bool {
	for i := 0; i < len(needle); i++ {
		if needle[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), needle)
		}
	}
	if needle == "" {
		return true
	}
	first := needle[0]
	for i := 0; i+len(needle) <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		j := 1
		for j < len(needle) && lowerASCII(s[i+j]) == needle[j] {
			j++
		}
		if j == len(needle) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// bodyHas searches the text parts of p, decoded and lower-cased once per
// message however many keys ask.
func (st *searchState) bodyHas(msg *fetchedMessage, p *message.Part, needle string) bool {
	if len(p.Parts) > 0 {
		for _, ch := range p.Parts {
			if st.bodyHas(msg, ch, needle) {
				return true
			}
		}
		return false
	}
	if p.Message != nil {
		return headerHas(p.Message, "", needle) || st.bodyHas(msg, p.Message, needle)
	}
	if p.Type != "text" && p.Type != "" {
		return false
	}
	text, ok := st.lowered[p]
	if !ok {
		body, err := decodeBody(p, msg.slice(p.BodyStart, p.End))
		if err != nil {
			body = msg.slice(p.BodyStart, p.End)
		}
		text = bytes.ToLower(body)
		if st.lowered == nil {
			st.lowered = map[*message.Part][]byte{}
		}
		st.lowered[p] = text
	}
	return bytes.Contains(text, []byte(needle))
}

// maxBodyKeys bounds the BODY and TEXT keys of one SEARCH: each reads
// every text part of every message searched. Clients send a few.
const maxBodyKeys = 64

// countKeys counts the nodes of a search program that use op.
func (k *searchKey) countKeys(ops ...string) int {
	n := 0
	if slices.Contains(ops, k.op) {
		n++
	}
	for _, kid := range k.kids {
		n += kid.countKeys(ops...)
	}
	return n
}

// searchResponse writes SEARCH or ESEARCH (RFC 4731, and RFC 9051 §7.3.4
// for IMAP4rev2 clients).
func (c *conn) searchResponse(tag string, hits []int, uid bool, ret searchReturn, modseq bool) {
	nums := make([]uint32, len(hits))
	var highest uint64
	for i, h := range hits {
		nums[i] = uint32(h + 1)
		if uid {
			nums[i] = c.mbox.msgs[h].UID
		}
		highest = max(highest, c.mbox.msgs[h].ModSeq)
	}
	if !ret.on && !c.rev2 {
		var b strings.Builder
		b.WriteString("* SEARCH")
		for _, n := range nums {
			b.WriteString(" " + strconv.FormatUint(uint64(n), 10))
		}
		if modseq && len(nums) > 0 {
			b.WriteString(" (MODSEQ " + strconv.FormatUint(highest, 10) + ")")
		}
		c.writef("%s\r\n", b.String())
		return
	}
	if !ret.on {
		ret.all = true
	}
	c.writef("* ESEARCH (TAG %s)%s\r\n", c.quote(tag), esearchData(nums, uid, ret, modseq, highest))
}

func esearchData(nums []uint32, uid bool, ret searchReturn, modseq bool, highest uint64) string {
	var b strings.Builder
	if uid {
		b.WriteString(" UID")
	}
	if ret.min && len(nums) > 0 {
		b.WriteString(" MIN " + strconv.FormatUint(uint64(nums[0]), 10))
	}
	if ret.max && len(nums) > 0 {
		b.WriteString(" MAX " + strconv.FormatUint(uint64(nums[len(nums)-1]), 10))
	}
	if ret.count {
		b.WriteString(" COUNT " + strconv.Itoa(len(nums)))
	}
	if ret.all && len(nums) > 0 {
		b.WriteString(" ALL " + formatUIDs(nums))
	}
	if modseq && len(nums) > 0 {
		b.WriteString(" MODSEQ " + strconv.FormatUint(highest, 10))
	}
	return b.String()
}
