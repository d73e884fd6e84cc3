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

// SORT (RFC 5256 §3) and its DISPLAYFROM/DISPLAYTO keys (RFC 5957).
//
//	sort          = ["UID" SP] "SORT" SP sort-criteria SP search-criteria
//	sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
//	sort-criterion = ["REVERSE" SP] sort-key
//	search-criteria = charset 1*(SP search-key)

// sortCriterion is one sort key, maybe reversed.
type sortCriterion struct {
	key     string
	reverse bool
}

var sortKeys = map[string]bool{"ARRIVAL": true, "CC": true, "DATE": true, "FROM": true, "SIZE": true,
	"SUBJECT": true, "TO": true, "DISPLAYFROM": true, "DISPLAYTO": true}

// maxSortCriteria bounds a client's criteria list; the RFC has seven
// keys, so anything longer only repeats them.
const maxSortCriteria = 32

func (c *conn) cmdSort(tag string, s *scanner, uid bool) error {
	if err := s.sp(); err != nil {
		return err
	}
	crit, err := sortCriteria(s)
	if err != nil {
		return err
	}
	hits, err := c.searchCriteria(s)
	if err != nil {
		return err
	}
	sorted, err := c.sortHits(hits, crit)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("* SORT")
	for _, i := range sorted {
		n := uint32(i + 1)
		if uid {
			n = c.mbox.msgs[i].UID
		}
		b.WriteString(" " + strconv.FormatUint(uint64(n), 10))
	}
	c.writef("%s\r\n", b.String())
	c.okNoExpunge(tag, "", "SORT completed")
	return nil
}

// sortCriteria reads "(" sort-criterion *(SP sort-criterion) ")".
func sortCriteria(s *scanner) ([]sortCriterion, error) {
	var out []sortCriterion
	reverse := false
	err := s.list(func() error {
		a, err := s.atom()
		if err != nil {
			return err
		}
		k := strings.ToUpper(a)
		switch {
		case k == "REVERSE" && !reverse:
			reverse = true
			return nil
		case !sortKeys[k]:
			return syntaxf("unknown sort key %q", a)
		case len(out) == maxSortCriteria:
			return syntaxf("too many sort criteria")
		}
		out = append(out, sortCriterion{key: k, reverse: reverse})
		reverse = false
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case reverse:
		return nil, syntaxf("REVERSE without a sort key")
	case len(out) == 0:
		return nil, syntaxf("empty sort criteria")
	}
	return out, nil
}

// searchCriteria reads SORT's and THREAD's " search-criteria" CRLF
// (charset 1*(SP search-key), RFC 5256 §3) and returns the messages that
// match.
func (c *conn) searchCriteria(s *scanner) ([]int, error) {
	if err := s.sp(); err != nil {
		return nil, err
	}
	if err := sortCharset(s); err != nil {
		return nil, err
	}
	keys, err := searchKeys(s)
	if err != nil {
		return nil, err
	}
	if err := s.crlf(); err != nil {
		return nil, err
	}
	hits, _, err := c.runSearch(keys)
	return hits, err
}

// sortCharset reads "charset SP" (SORT's and THREAD's is not optional,
// RFC 5256 §3; SEARCH's follows CHARSET); only UTF-8 and US-ASCII are
// known.
func sortCharset(s *scanner) error {
	cs, err := s.astring()
	if err != nil {
		return err
	}
	if cs = strings.ToUpper(cs); cs != "UTF-8" && cs != "US-ASCII" {
		return no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset")
	}
	return s.sp()
}

// searchKeys reads 1*(SP search-key) after SORT's charset.
func searchKeys(s *scanner) ([]*searchKey, error) {
	var keys []*searchKey
	for {
		k, word, err := nextSearchKey(s)
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, syntaxf("%s is not a search key here", word)
		}
		keys = append(keys, k)
		if !s.maybeSP() {
			return keys, nil
		}
	}
}

// sortValues are one message's values for the sort keys in use.
type sortValues struct {
	seq  int
	strs map[string]string
	date time.Time // sent date (DATE)
}

// sortHits orders the messages hits (indexes into the mailbox) by crit;
// messages equal under every key keep mailbox order (RFC 5256 §3).
func (c *conn) sortHits(hits []int, crit []sortCriterion) ([]int, error) {
	vals := make([]sortValues, len(hits))
	needHeader := false
	for _, k := range crit {
		needHeader = needHeader || k.key != "ARRIVAL" && k.key != "SIZE"
	}
	for j, i := range hits {
		if err := c.alive(); err != nil {
			return nil, err
		}
		vals[j] = sortValues{seq: i}
		if needHeader {
			if err := c.sortFields(&vals[j], crit); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(vals, func(a, b sortValues) int {
		for _, k := range crit {
			r := c.compareBy(k.key, a, b)
			if k.reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := make([]int, len(vals))
	for j, v := range vals {
		out[j] = v.seq
	}
	return out, nil
}

// sortFields fills in the header-derived values of one message.
func (c *conn) sortFields(v *sortValues, crit []sortCriterion) error {
	st := &searchState{c: c, i: v.seq}
	head := st.loadHeader()
	defer func() {
		if head != nil {
			head.release()
		}
	}()
	v.strs = map[string]string{}
	if head == nil {
		if errors.Is(st.err, errExpungeIssued) {
			return nil // gone meanwhile: sorts as a message without fields
		}
		return st.err
	}
	for _, k := range crit {
		switch k.key {
		case "CC", "FROM", "TO":
			v.strs[k.key] = firstMailbox(head.root.Get(k.key))
		case "DISPLAYFROM", "DISPLAYTO":
			v.strs[k.key] = displayName(head.root.Get(strings.TrimPrefix(k.key, "DISPLAY")))
		case "SUBJECT":
			v.strs[k.key] = baseSubject(head.root.Get("Subject"))
		case "DATE":
			// RFC 5256 §3: the INTERNALDATE when the Date field is missing
			// or unparseable; compared in UTC.
			v.date = c.mbox.msgs[v.seq].InternalDate
			if t, err := mail.ParseDate(head.root.Get("Date")); err == nil {
				v.date = t
			}
		}
	}
	return nil
}

func (c *conn) compareBy(key string, a, b sortValues) int {
	ma, mb := c.mbox.msgs[a.seq], c.mbox.msgs[b.seq]
	switch key {
	case "ARRIVAL":
		return ma.InternalDate.Compare(mb.InternalDate)
	case "SIZE":
		return cmp.Compare(ma.Size, mb.Size)
	case "DATE":
		return a.date.Compare(b.date)
	}
	return compareASCIICasemap(a.strs[key], b.strs[key])
}

// compareASCIICasemap is the i;ascii-casemap collation (RFC 4790 §9.2),
// SORT's default (RFC 5256 §2.2): octets compared with a-z folded to A-Z.
func compareASCIICasemap(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := upperASCII(a[i]), upperASCII(b[i])
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func upperASCII(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// firstMailbox is the addr-mailbox (local part) of a field's first
// address, or "" (RFC 5256 §3, CC, FROM and TO).
func firstMailbox(field string) string {
	for _, a := range message.ParseAddressList(field) {
		if !a.Group && !a.GroupEnd {
			return a.Mailbox
		}
	}
	return ""
}

// displayName is RFC 5957 §2's value: the decoded display name of the
// first address, else its addr-spec; "" without one.
func displayName(field string) string {
	for _, a := range message.ParseAddressList(field) {
		if a.Group || a.GroupEnd {
			continue
		}
		if name := strings.TrimSpace(decodeWords(a.Name)); name != "" {
			return name
		}
		if a.Host == "" {
			return a.Mailbox
		}
		return a.Mailbox + "@" + a.Host
	}
	return ""
}

// decodeWords decodes RFC 2047 encoded words; undecodable text stays.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}
