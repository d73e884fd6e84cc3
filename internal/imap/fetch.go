package imap

import (
	"errors"
	"strconv"
	"strings"
)

// fetchItem is one requested data item (RFC 9051 §6.4.5).
type fetchItem struct {
	name    string // UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY, MODSEQ, or a section
	section *section
}

// section is BODY[…], BINARY[…] or BINARY.SIZE[…].
type section struct {
	kind    string // "BODY", "BINARY", "BINARY.SIZE"
	peek    bool
	path    []int
	text    string // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	fields  []string
	partial bool
	offset  int64
	length  int64
	label   string // how the response names it, e.g. RFC822, BODY[1.2]
}

// fetchMacros expand ALL, FAST and FULL (RFC 9051 §6.4.5).
var fetchMacros = map[string][]string{
	"ALL":  {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"},
	"FAST": {"FLAGS", "INTERNALDATE", "RFC822.SIZE"},
	"FULL": {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"},
}

// fetchOptions are the FETCH modifiers (RFC 7162).
type fetchOptions struct {
	changedSince uint64
	vanished     bool
}

func (c *conn) cmdFetch(tag string, s *scanner, uid bool) error {
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
	items, err := parseFetchItems(s)
	if err != nil {
		return err
	}
	opts, err := fetchModifiers(s, uid)
	if err != nil {
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	idx, err := c.targets(set, uid)
	if err != nil {
		return err
	}
	if opts.changedSince > 0 || hasItem(items, "MODSEQ") {
		c.condstore = true
	}
	if opts.changedSince > 0 && !hasItem(items, "MODSEQ") {
		// RFC 7162 §3.1.4.1: CHANGEDSINCE implies the MODSEQ item.
		items = append(items, fetchItem{name: "MODSEQ"})
	}
	if uid && !hasItem(items, "UID") {
		items = append([]fetchItem{{name: "UID"}}, items...)
	}
	if opts.vanished {
		c.fetchVanished(set, opts.changedSince)
	}
	gone := false
	for _, i := range idx {
		if opts.changedSince > 0 && c.mbox.msgs[i].ModSeq <= opts.changedSince {
			continue
		}
		err := c.fetchOne(i, items)
		if errors.Is(err, errExpungeIssued) {
			// RFC 2180 §4.1.2: the others are served; the tagged NO
			// tells the client to look for EXPUNGE responses.
			gone = true
			continue
		}
		if err != nil {
			return err
		}
	}
	if gone {
		return errExpungeIssued
	}
	c.okNoExpunge(tag, "", "FETCH completed")
	return nil
}

func hasItem(items []fetchItem, name string) bool {
	for _, it := range items {
		if it.name == name {
			return true
		}
	}
	return false
}

func parseFetchItems(s *scanner) ([]fetchItem, error) {
	if b, _ := s.peek(); b == '(' {
		var items []fetchItem
		err := s.list(func() error {
			it, err := parseFetchItem(s)
			items = append(items, it...)
			return err
		})
		return items, err
	}
	return parseFetchItem(s)
}

// fetchName reads an item name: letters, digits and dots.
func (s *scanner) fetchName() (string, error) {
	var b strings.Builder
	for {
		c, err := s.peek()
		if err != nil {
			return "", err
		}
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.') {
			break
		}
		_, _ = s.next()
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "", syntaxf("expected a FETCH item")
	}
	return strings.ToUpper(b.String()), nil
}

func parseFetchItem(s *scanner) ([]fetchItem, error) {
	name, err := s.fetchName()
	if err != nil {
		return nil, err
	}
	if m, ok := fetchMacros[name]; ok {
		var out []fetchItem
		for _, n := range m {
			out = append(out, fetchItem{name: n})
		}
		return out, nil
	}
	switch name {
	case "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "MODSEQ":
		return []fetchItem{{name: name}}, nil
	case "RFC822":
		return []fetchItem{{name: name, section: &section{kind: "BODY", label: "RFC822"}}}, nil
	case "RFC822.HEADER":
		return []fetchItem{{name: name, section: &section{kind: "BODY", peek: true, text: "HEADER", label: "RFC822.HEADER"}}}, nil
	case "RFC822.TEXT":
		return []fetchItem{{name: name, section: &section{kind: "BODY", text: "TEXT", label: "RFC822.TEXT"}}}, nil
	case "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		if b, _ := s.peek(); b != '[' {
			if name == "BODY" {
				return []fetchItem{{name: "BODY"}}, nil
			}
			return nil, syntaxf("%s needs a section", name)
		}
		sec, err := parseSection(s, name)
		return []fetchItem{{name: "SECTION", section: sec}}, err
	}
	return nil, syntaxf("unknown FETCH item %s", name)
}

// parseSection reads "[section]<partial>".
func parseSection(s *scanner, name string) (*section, error) {
	sec := &section{kind: strings.TrimSuffix(name, ".PEEK"), peek: strings.HasSuffix(name, ".PEEK")}
	if err := s.expect('['); err != nil {
		return nil, err
	}
	if err := sec.parseSpec(s); err != nil {
		return nil, err
	}
	if err := s.expect(']'); err != nil {
		return nil, err
	}
	if b, _ := s.peek(); b == '<' && sec.kind != "BINARY.SIZE" {
		if err := sec.parsePartial(s); err != nil {
			return nil, err
		}
	}
	sec.label = sec.kind + "[" + sec.specString() + "]"
	return sec, nil
}

func (sec *section) parseSpec(s *scanner) error {
	for {
		b, err := s.peek()
		if err != nil || b == ']' {
			return err
		}
		if b >= '0' && b <= '9' {
			n, err := s.number()
			if err != nil || n == 0 {
				return syntaxf("bad section part")
			}
			sec.path = append(sec.path, int(n))
			if b, _ := s.peek(); b == '.' {
				_, _ = s.next()
				continue
			}
			return nil
		}
		return sec.parseText(s)
	}
}

func (sec *section) parseText(s *scanner) error {
	t, err := s.fetchName()
	if err != nil {
		return err
	}
	switch t {
	case "HEADER", "TEXT":
	case "MIME":
		if len(sec.path) == 0 {
			return syntaxf("MIME needs a part number")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if err := s.sp(); err != nil {
			return err
		}
		if err := s.list(func() error {
			f, err := s.astring()
			if err == nil && !fieldNameAtom(f) {
				err = syntaxf("bad header field name")
			}
			sec.fields = append(sec.fields, strings.ToUpper(f))
			return err
		}); err != nil {
			return err
		}
		if len(sec.fields) == 0 { // RFC 9051 §9: header-list has at least one
			return syntaxf("empty header field list")
		}
	default:
		return syntaxf("bad section text %s", t)
	}
	if sec.kind != "BODY" {
		return syntaxf("BINARY takes part numbers only")
	}
	sec.text = t
	return nil
}

// fieldNameAtom reports whether f is a header field name (RFC 5322 §3.6.8
// ftext) that can be echoed in the response label as an atom: printable
// ASCII without ':' and without IMAP's atom-specials.
func fieldNameAtom(f string) bool {
	if f == "" {
		return false
	}
	for i := 0; i < len(f); i++ {
		if c := f[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`:(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func (sec *section) parsePartial(s *scanner) error {
	_, _ = s.next()
	off, err := s.number64()
	if err != nil {
		return err
	}
	if err := s.expect('.'); err != nil {
		return err
	}
	n, err := s.number64()
	if err != nil || n == 0 {
		return syntaxf("bad partial")
	}
	sec.partial, sec.offset, sec.length = true, off, n
	return s.expect('>')
}

func (sec *section) specString() string {
	var parts []string
	for _, p := range sec.path {
		parts = append(parts, strconv.Itoa(p))
	}
	if sec.text != "" {
		t := sec.text
		if sec.fields != nil {
			t += " (" + strings.Join(sec.fields, " ") + ")"
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, ".")
}

// fetchModifiers reads " (CHANGEDSINCE n [VANISHED])" (RFC 7162).
func fetchModifiers(s *scanner, uid bool) (fetchOptions, error) {
	var o fetchOptions
	if !s.maybeSP() {
		return o, nil
	}
	err := s.list(func() error {
		a, err := s.atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "CHANGEDSINCE":
			if err := s.sp(); err != nil {
				return err
			}
			n, err := s.number64()
			if err == nil && n == 0 {
				// RFC 7162 §7: mod-sequence-value is positive.
				err = syntaxf("CHANGEDSINCE needs a positive mod-sequence")
			}
			o.changedSince = uint64(n)
			return err
		case "VANISHED":
			o.vanished = true
			return nil
		}
		return syntaxf("unknown FETCH modifier")
	})
	if err == nil && o.vanished && (!uid || o.changedSince == 0) {
		err = bad("", "VANISHED needs UID FETCH with CHANGEDSINCE")
	}
	return o, err
}

// fetchVanished reports UIDs of the set expunged since modseq (RFC 7162
// §3.2.6).
func (c *conn) fetchVanished(set *seqSet, since uint64) {
	if !c.qresync {
		return
	}
	ch, err := c.user.Changes(c.mbox.ctx, c.mbox.name, since)
	if err != nil {
		return
	}
	var gone []uint32
	for _, u := range ch.Expunged {
		if set.contains(u, c.mbox.uidNext) {
			gone = append(gone, u)
		}
	}
	if len(gone) > 0 {
		c.writef("* VANISHED (EARLIER) %s\r\n", formatUIDs(gone))
	}
}

// fetchOne writes the FETCH response of message i.
func (c *conn) fetchOne(i int, items []fetchItem) error {
	m := c.mbox.msgs[i]
	var msg *fetchedMessage
	setSeen := false
	load := c.loadHeader
	for _, it := range items {
		if it.needsContent() && !it.headerOnly() {
			load = c.loadMessage
		}
	}
	// Every item is computed before the first octet is written: an error
	// must not leave half a response on the wire.
	out := make([]fetchPiece, 0, len(items)+1)
	fs := &fetchScratch{limit: 1 << 20}
	for _, it := range items {
		if it.needsContent() && msg == nil {
			var err error
			if msg, err = load(m); err != nil {
				return err
			}
			defer msg.release()
			fs.limit += 2 * int64(len(msg.data))
		}
		v, err := c.fetchValue(it, m, msg, fs)
		if err != nil {
			return err
		}
		out = append(out, v)
		if it.section != nil && !it.section.peek && it.section.kind != "BINARY.SIZE" {
			setSeen = true
		}
	}
	if setSeen && !c.mbox.readOnly && !containsFold(m.Flags, `\Seen`) {
		if changed, _, err := c.user.SetFlags(c.mbox.ctx, c.mbox.name, []uint32{m.UID}, FlagsAdd, []string{`\Seen`}, 0); err == nil && len(changed) == 1 {
			c.mbox.msgs[i] = changed[0]
			if !hasItem(items, "FLAGS") {
				out = append(out, fetchPiece{text: "FLAGS (" + strings.Join(changed[0].Flags, " ") + ")"})
			}
		}
	}
	c.writef("* %d FETCH (", i+1)
	for j, p := range out {
		if j > 0 {
			c.bw.WriteByte(' ')
		}
		c.bw.WriteString(p.text)
		c.bw.Write(p.data)
	}
	c.bw.WriteString(")\r\n")
	return nil
}

// headerOnly reports whether the item is served from the header section
// alone: ENVELOPE, and BODY[HEADER], BODY[HEADER.FIELDS…] of the message.
func (it fetchItem) headerOnly() bool {
	if it.name == "ENVELOPE" {
		return true
	}
	sec := it.section
	return sec != nil && sec.kind == "BODY" && len(sec.path) == 0 && strings.HasPrefix(sec.text, "HEADER")
}

func (it fetchItem) needsContent() bool {
	return it.section != nil || it.name == "ENVELOPE" || it.name == "BODYSTRUCTURE" || it.name == "BODY"
}

func (c *conn) fetchValue(it fetchItem, m Meta, msg *fetchedMessage, fs *fetchScratch) (fetchPiece, error) {
	var v string
	switch it.name {
	case "UID":
		v = "UID " + strconv.FormatUint(uint64(m.UID), 10)
	case "FLAGS":
		v = "FLAGS (" + strings.Join(m.Flags, " ") + ")"
	case "INTERNALDATE":
		v = "INTERNALDATE \"" + m.InternalDate.Local().Format("02-Jan-2006 15:04:05 -0700") + "\""
	case "RFC822.SIZE":
		v = "RFC822.SIZE " + strconv.FormatInt(m.Size, 10)
	case "MODSEQ":
		v = "MODSEQ (" + strconv.FormatUint(m.ModSeq, 10) + ")"
	case "ENVELOPE":
		v = "ENVELOPE " + c.envelope(msg.root)
	case "BODYSTRUCTURE":
		v = "BODYSTRUCTURE " + c.bodyStructure(msg.root, true)
	case "BODY":
		v = "BODY " + c.bodyStructure(msg.root, false)
	default:
		return c.sectionValue(it.section, msg, fs)
	}
	if err := fs.charge(len(v)); err != nil {
		return fetchPiece{}, err
	}
	return fetchPiece{text: v}, nil
}

var errNoSection = errors.New("no such section")
