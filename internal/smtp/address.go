package smtp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Errors returned by ParsePath and ParseAddress, always wrapped with detail.
// Test with errors.Is.
var (
	ErrPathSyntax  = errors.New("path syntax error")
	ErrPathTooLong = errors.New("path too long")
	ErrNeedsUTF8   = errors.New("non-ASCII address needs SMTPUTF8")
)

// Size limits (RFC 5321 §4.5.3.1).
const (
	maxLocalLen  = 64  // RFC 5321 §4.5.3.1.1: local-part, on the wire (quotes included).
	maxDomainLen = 255 // RFC 5321 §4.5.3.1.2: domain.
	maxPathLen   = 256 // RFC 5321 §4.5.3.1.3: path including "<", ">", route and separators.
	maxLabelLen  = 63  // RFC 1035 §2.3.4: one label (A-label form for IDNs, RFC 5890 §2.3.2.1).
)

// Address is a mailbox of an envelope path.
//
// Addresses made by ParsePath and ParseAddress are canonical: parsing
// "<"+a.String()+">" again yields an equal Address.
type Address struct {
	Local  string // local part with quoting removed (quoted-pairs resolved)
	Domain string // domain: ASCII labels lower-cased; U-labels as NFC UTF-8 lower-cased; address literals keep brackets, e.g. "[192.0.2.1]", "[IPv6:2001:db8::1]"
}

// String returns local@domain. The local part is re-quoted as a
// Quoted-string with quoted-pairs when it is not a valid Dot-string
// (RFC 5321 §4.1.2). The zero Address gives "". A hand-built Address
// whose parts hold control characters gives a string no parser accepts.
func (a Address) String() string {
	if a.IsZero() {
		return ""
	}
	return quoteLocal(a.Local) + "@" + a.Domain
}

// IsZero reports whether a is the zero Address.
func (a Address) IsZero() bool { return a.Local == "" && a.Domain == "" }

// IsLiteral reports whether the domain is an address literal
// (RFC 5321 §4.1.3).
func (a Address) IsLiteral() bool { return strings.HasPrefix(a.Domain, "[") }

// IsASCII reports whether a is pure ASCII; otherwise it may only be used
// in a transaction that declared SMTPUTF8 (RFC 6531 §3.2).
func (a Address) IsASCII() bool { return isASCII(a.Local) && isASCII(a.Domain) }

// ASCIIDomain returns the domain in A-label (punycode) form for DNS lookups
// (RFC 5890 §2.3.2.1). Literals and ASCII domains are returned unchanged.
// It returns "" when Domain is not a valid IDN, which can only happen for
// an Address not made by this package's parsers.
func (a Address) ASCIIDomain() string {
	if a.IsLiteral() || isASCII(a.Domain) {
		return a.Domain
	}
	d, err := idna.Lookup.ToASCII(a.Domain)
	if err != nil {
		return ""
	}
	return d
}

// Path is a reverse-path or forward-path (RFC 5321 §4.1.2).
type Path struct {
	Null  bool     // the null reverse-path "<>"
	Route []string // source route domains (RFC 5321 §4.1.1.3, §C): parsed, validated, ignored for routing
	Addr  Address
}

// String returns "<>" for the null path, else "<" + Addr.String() + ">".
// The source route is dropped (RFC 5321 §4.1.1.3: SHOULD NOT be used).
func (p Path) String() string {
	if p.Null {
		return "<>"
	}
	return "<" + p.Addr.String() + ">"
}

// PathOptions say what ParsePath accepts.
type PathOptions struct {
	AllowNull bool // "<>" is accepted (MAIL FROM only)
	UTF8      bool // RFC 6531: UTF-8 allowed in local part and domain (MAIL had SMTPUTF8)
}

// ParsePath parses "<...>" at the start of s and returns the rest of s
// after ">", with leading spaces removed (the ESMTP parameters). The ">"
// must end s or be followed by a space.
//
// The grammar is RFC 5321 §4.1.2 (extended by RFC 6531 §3.3 when
// opts.UTF8), with no leniency: brackets are required, no whitespace, no
// unquoted "@" in the local part. Relay tricks such as "a%b@c" and "b!a@c"
// are plain local parts at domain c.
func ParsePath(s string, opts PathOptions) (p Path, rest string, err error) {
	ap := &addrParser{s: s, utf8: opts.UTF8}
	if p, err = ap.path(opts.AllowNull); err != nil {
		return Path{}, "", err
	}
	rest = s[ap.pos:]
	if rest != "" && rest[0] != ' ' {
		// RFC 5321 §4.1.1.2: "MAIL FROM:" Reverse-path [SP Mail-parameters].
		return Path{}, "", pathErr(ErrPathSyntax, "no space after \">\"")
	}
	return p, strings.TrimLeft(rest, " "), nil
}

// ParseAddress parses a bare "local@domain" (no brackets, no route), e.g.
// from the command line or config. It checks the local-part and domain
// limits but not the path limit, which belongs to ParsePath.
func ParseAddress(s string, utf8 bool) (Address, error) {
	ap := &addrParser{s: s, utf8: utf8}
	return ap.mailbox("")
}

// FromAddrSpec makes an Address of an RFC 5322 addr-spec as net/mail
// and most mail libraries give it: the local part with its quotes
// removed, so that the last '@' splits it from the domain. Its String()
// quotes the local part again where RFC 5321 §4.1.2 needs it: put into
// a command as it was, the addr-spec "bob@x> ORCPT=…"@y became a
// recipient bob@x with parameters of the sender's choosing. A string
// without '@' or whose parts make no valid address is refused.
func FromAddrSpec(s string) (Address, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return Address{}, pathErr(ErrPathSyntax, "no local part and domain")
	}
	return ParseAddress(Address{Local: s[:i], Domain: s[i+1:]}.String(), true)
}

// addrParser walks s from pos; it never backtracks.
type addrParser struct {
	s    string
	pos  int
	utf8 bool // RFC 6531 UTF-8 allowed
}

func pathErr(sentinel error, detail string) error {
	return fmt.Errorf("%w: %s", sentinel, detail)
}

func (p *addrParser) peek(c byte) bool { return p.pos < len(p.s) && p.s[p.pos] == c }

func (p *addrParser) consume(c byte) bool {
	if p.peek(c) {
		p.pos++
		return true
	}
	return false
}

// path parses Path = "<" [ A-d-l ":" ] Mailbox ">" (RFC 5321 §4.1.2), or
// the null Reverse-path "<>".
func (p *addrParser) path(allowNull bool) (Path, error) {
	if !p.consume('<') {
		return Path{}, pathErr(ErrPathSyntax, "missing \"<\"")
	}
	if p.consume('>') {
		if !allowNull {
			return Path{}, pathErr(ErrPathSyntax, "null path not allowed here")
		}
		return Path{Null: true}, nil
	}
	route, err := p.route()
	if err != nil {
		return Path{}, err
	}
	addr, err := p.mailbox(">")
	if err != nil {
		return Path{}, err
	}
	if !p.consume('>') {
		return Path{}, pathErr(ErrPathSyntax, "missing \">\"")
	}
	if p.pos > maxPathLen { // RFC 5321 §4.5.3.1.3
		return Path{}, pathErr(ErrPathTooLong, fmt.Sprintf("path is %d octets, limit %d", p.pos, maxPathLen))
	}
	return Path{Route: route, Addr: addr}, nil
}

// route parses A-d-l ":" where A-d-l = At-domain *( "," At-domain ) and
// At-domain = "@" Domain (RFC 5321 §4.1.2). Address literals are not
// Domains, so "@[192.0.2.1]:" is refused.
func (p *addrParser) route() ([]string, error) {
	if !p.peek('@') {
		return nil, nil
	}
	var route []string
	for {
		if !p.consume('@') {
			return nil, pathErr(ErrPathSyntax, "bad source route")
		}
		d, err := parseDomain(p.token(",:"), p.utf8)
		if err != nil {
			return nil, err
		}
		route = append(route, d)
		if p.consume(':') {
			return route, nil
		}
		if !p.consume(',') {
			return nil, pathErr(ErrPathSyntax, "bad source route")
		}
	}
}

// token consumes and returns the text up to the first byte in stops, or
// to the end of s.
func (p *addrParser) token(stops string) string {
	start := p.pos
	if i := strings.IndexAny(p.s[start:], stops); i >= 0 {
		p.pos += i
	} else {
		p.pos = len(p.s)
	}
	return p.s[start:p.pos]
}

// mailbox parses Mailbox = Local-part "@" ( Domain / address-literal )
// (RFC 5321 §4.1.2). The local part is parsed first, so the "@" that
// separates is the first one outside a quoted string; the domain then
// runs to the first byte in stops and must not contain another "@".
func (p *addrParser) mailbox(stops string) (Address, error) {
	local, err := p.localPart()
	if err != nil {
		return Address{}, err
	}
	if !p.consume('@') {
		return Address{}, pathErr(ErrPathSyntax, "missing \"@\" after local part")
	}
	domain, err := parseDomainOrLiteral(p.token(stops), p.utf8)
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// localPart parses Local-part = Dot-string / Quoted-string
// (RFC 5321 §4.1.2) and returns it unquoted.
func (p *addrParser) localPart() (string, error) {
	start := p.pos
	var local string
	var err error
	if p.peek('"') {
		local, err = p.quotedString()
	} else {
		local, err = p.dotString()
	}
	if err != nil {
		return "", err
	}
	if n := p.pos - start; n > maxLocalLen { // RFC 5321 §4.5.3.1.1
		return "", pathErr(ErrPathTooLong, fmt.Sprintf("local part is %d octets, limit %d", n, maxLocalLen))
	}
	return local, nil
}

// dotString parses Dot-string = Atom *("." Atom) (RFC 5321 §4.1.2).
func (p *addrParser) dotString() (string, error) {
	start := p.pos
	for {
		if err := p.atom(); err != nil {
			return "", err
		}
		if !p.consume('.') {
			return p.s[start:p.pos], nil
		}
	}
}

// atom parses Atom = 1*atext (RFC 5321 §4.1.2), atext being RFC 5322
// §3.2.3 atext plus UTF8-non-ascii under RFC 6531 §3.3.
func (p *addrParser) atom() error {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case isAtext(c):
			p.pos++
		case c >= utf8.RuneSelf:
			n, err := p.nonASCII()
			if err != nil {
				return err
			}
			p.pos += n
		default:
			return p.atomEnd(start)
		}
	}
	return p.atomEnd(start)
}

func (p *addrParser) atomEnd(start int) error {
	if p.pos == start {
		return pathErr(ErrPathSyntax, "empty local part or misplaced dot")
	}
	return nil
}

// quotedString parses Quoted-string = DQUOTE *QcontentSMTP DQUOTE
// (RFC 5321 §4.1.2) and resolves the quoted-pairs. An empty string is
// refused: a mailbox needs a local part.
func (p *addrParser) quotedString() (string, error) {
	p.pos++ // opening DQUOTE
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			if b.Len() == 0 {
				return "", pathErr(ErrPathSyntax, "empty quoted local part")
			}
			return b.String(), nil
		case c == '\\':
			// RFC 5321 §4.1.2: quoted-pairSMTP = %d92 %d32-126.
			if p.pos+1 >= len(p.s) || p.s[p.pos+1] < 32 || p.s[p.pos+1] > 126 {
				return "", pathErr(ErrPathSyntax, "bad quoted-pair")
			}
			b.WriteByte(p.s[p.pos+1])
			p.pos += 2
		case isQtext(c):
			b.WriteByte(c)
			p.pos++
		case c >= utf8.RuneSelf: // RFC 6531 §3.3: qtextSMTP =/ UTF8-non-ascii.
			n, err := p.nonASCII()
			if err != nil {
				return "", err
			}
			b.WriteString(p.s[p.pos : p.pos+n])
			p.pos += n
		default:
			return "", pathErr(ErrPathSyntax, "bad character in quoted local part")
		}
	}
	return "", pathErr(ErrPathSyntax, "unterminated quoted local part")
}

// nonASCII checks the UTF8-non-ascii character at pos (RFC 6531 §3.3,
// RFC 6532 §3.1) and returns its length.
func (p *addrParser) nonASCII() (int, error) {
	r, n := utf8.DecodeRuneInString(p.s[p.pos:])
	if err := checkRune(r, n); err != nil {
		return 0, err
	}
	if !p.utf8 { // RFC 6531 §3.2: only after SMTPUTF8.
		return 0, pathErr(ErrNeedsUTF8, "non-ASCII character")
	}
	return n, nil
}

// checkRune refuses invalid UTF-8 and characters that could split or
// disguise a line when the address is logged or written to a file
// (security.md §2.6): C0 and C1 controls, DEL, line and paragraph separators.
func checkRune(r rune, n int) error {
	switch {
	case r == utf8.RuneError && n <= 1:
		return pathErr(ErrPathSyntax, "invalid UTF-8")
	case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
		return pathErr(ErrPathSyntax, "control character")
	}
	return nil
}

// isAtext reports RFC 5322 §3.2.3 atext:
// ALPHA / DIGIT / "!#$%&'*+-/=?^_`{|}~".
func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isQtext reports RFC 5321 §4.1.2 qtextSMTP: %d32-33 / %d35-91 / %d93-126.
func isQtext(c byte) bool {
	return c == 32 || c == 33 || 35 <= c && c <= 91 || 93 <= c && c <= 126
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isDotString reports whether s can be written unquoted
// (RFC 5321 §4.1.2 Dot-string; non-ASCII counts as atext, RFC 6531 §3.3).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !isAtext(c) && c < utf8.RuneSelf {
			return false
		}
	}
	return true
}

// quoteLocal writes a local part as a Dot-string when it is one, else as
// a Quoted-string escaping only DQUOTE and backslash (RFC 5321 §4.1.2:
// "SHOULD NOT ... quoted-pair ... if not necessary").
func quoteLocal(s string) string {
	if isDotString(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// parseDomainOrLiteral parses ( Domain / address-literal ) (RFC 5321 §4.1.2).
func parseDomainOrLiteral(s string, allowUTF8 bool) (string, error) {
	if strings.HasPrefix(s, "[") {
		return parseLiteral(s)
	}
	return parseDomain(s, allowUTF8)
}

// parseDomain parses Domain = sub-domain *("." sub-domain) (RFC 5321
// §4.1.2; sub-domain =/ U-label, RFC 6531 §3.3) and returns it in
// canonical form: lower-case, U-labels in NFC.
func parseDomain(s string, allowUTF8 bool) (string, error) {
	if s == "" {
		return "", pathErr(ErrPathSyntax, "empty domain")
	}
	if len(s) > maxDomainLen { // RFC 5321 §4.5.3.1.2
		return "", pathErr(ErrPathTooLong, fmt.Sprintf("domain is %d octets, limit %d", len(s), maxDomainLen))
	}
	labels := strings.Split(s, ".")
	idn := false
	for i, l := range labels {
		canon, isIDN, err := parseLabel(l, allowUTF8)
		if err != nil {
			return "", err
		}
		labels[i], idn = canon, idn || isIDN
	}
	if err := checkTLD(labels[len(labels)-1]); err != nil {
		return "", err
	}
	if idn {
		if err := checkIDN(s, labels); err != nil {
			return "", err
		}
	}
	return strings.Join(labels, "."), nil
}

// parseLabel checks one sub-domain and returns it lower-cased (NFC for
// U-labels), and whether IDNA rules apply to it (a U-label or an "xn--"
// A-label, RFC 5890 §2.3.2.1).
func parseLabel(l string, allowUTF8 bool) (string, bool, error) {
	if isASCII(l) {
		if err := checkLDH(l); err != nil {
			return "", false, err
		}
		l = strings.ToLower(l)
		return l, strings.HasPrefix(l, "xn--"), nil
	}
	if err := checkULabel(l); err != nil {
		return "", false, err
	}
	if !allowUTF8 { // RFC 6531 §3.2
		return "", false, pathErr(ErrNeedsUTF8, "non-ASCII domain")
	}
	return norm.NFC.String(strings.ToLower(l)), true, nil
}

// checkULabel checks the characters of a would-be U-label; the IDNA rules
// proper are applied to the whole domain by checkIDN.
func checkULabel(l string) error {
	for i := 0; i < len(l); {
		r, n := utf8.DecodeRuneInString(l[i:])
		if err := checkRune(r, n); err != nil {
			return err
		}
		if r < utf8.RuneSelf && !isLetDig(byte(r)) && r != '-' {
			return pathErr(ErrPathSyntax, "bad character in domain")
		}
		i += n
	}
	return nil
}

// checkLDH checks sub-domain = Let-dig [Ldh-str] (RFC 5321 §4.1.2): letters,
// digits and inner hyphens, 1 to 63 octets (RFC 1035 §2.3.4).
func checkLDH(l string) error {
	switch {
	case l == "":
		return pathErr(ErrPathSyntax, "empty domain label or misplaced dot")
	case len(l) > maxLabelLen:
		return pathErr(ErrPathSyntax, "domain label longer than 63 octets")
	case !isLetDig(l[0]) || !isLetDig(l[len(l)-1]):
		return pathErr(ErrPathSyntax, "domain label must start and end with a letter or digit")
	}
	for i := 1; i < len(l)-1; i++ {
		if !isLetDig(l[i]) && l[i] != '-' {
			return pathErr(ErrPathSyntax, "bad character in domain")
		}
	}
	return nil
}

func isLetDig(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// checkTLD refuses an all-numeric last label: "a@192.0.2.1" would read as
// an IPv4 address without brackets (RFC 1123 §2.1, RFC 3696 §2).
func checkTLD(l string) error {
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return nil
		}
	}
	return pathErr(ErrPathSyntax, "all-numeric top-level domain")
}

// checkIDN validates domain s, which has U-labels or A-labels, under IDNA
// (RFC 5891 §5.4, UTS #46 lookup), and requires its lower-cased NFC
// labels to be what IDNA maps s to, so that a domain has exactly one
// Domain string: no fullwidth letters, no "。" dots, no non-canonical
// punycode, no case mapping that differs from IDNA's ("İ").
func checkIDN(s string, labels []string) error {
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return pathErr(ErrPathSyntax, "invalid internationalized domain")
	}
	alabels := strings.Split(a, ".")
	if len(alabels) != len(labels) {
		return pathErr(ErrPathSyntax, "domain not in canonical form")
	}
	for i, al := range alabels {
		if err := checkALabel(al, labels[i]); err != nil {
			return err
		}
	}
	if len(a) > maxDomainLen { // RFC 5321 §4.5.3.1.2, for the DNS form
		return pathErr(ErrPathTooLong, "domain in A-label form longer than 255 octets")
	}
	return nil
}

// checkALabel checks that A-label al is the IDNA form of canonical label l.
func checkALabel(al, l string) error {
	if len(al) > maxLabelLen { // RFC 5890 §2.3.2.1
		return pathErr(ErrPathSyntax, "domain label longer than 63 octets")
	}
	if isASCII(l) {
		if al != l {
			return pathErr(ErrPathSyntax, "A-label not in canonical form")
		}
		return nil
	}
	if u, err := idna.Lookup.ToUnicode(al); err != nil || u != l {
		return pathErr(ErrPathSyntax, "U-label not in canonical form")
	}
	return nil
}

// parseLiteral parses address-literal = "[" ( IPv4-address-literal /
// IPv6-address-literal / General-address-literal ) "]" (RFC 5321 §4.1.3).
// General literals are refused; the result is canonical.
func parseLiteral(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return "", pathErr(ErrPathSyntax, "bad address literal")
	}
	inner := s[1 : len(s)-1]
	tag, addr, tagged := strings.Cut(inner, ":")
	if !tagged {
		if !isIPv4(inner) {
			return "", pathErr(ErrPathSyntax, "bad IPv4 address literal")
		}
		return s, nil
	}
	// RFC 5321 §4.1.3: IPv6-address-literal = "IPv6:" IPv6-addr; ABNF
	// strings are case-insensitive (RFC 5234 §2.3).
	if !strings.EqualFold(tag, "IPv6") {
		return "", pathErr(ErrPathSyntax, "general address literal not accepted")
	}
	ip, err := parseIPv6(addr)
	if err != nil {
		return "", err
	}
	return "[IPv6:" + ip + "]", nil
}

// isIPv4 checks IPv4-address-literal = Snum 3("." Snum) (RFC 5321 §4.1.3),
// Snum 0 to 255, refusing leading zeros, which some software reads as
// octal.
func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, n := range parts {
		if !isSnum(n) {
			return false
		}
	}
	return true
}

func isSnum(n string) bool {
	if n == "" || len(n) > 3 || len(n) > 1 && n[0] == '0' {
		return false
	}
	v := 0
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
		v = v*10 + int(n[i]-'0')
	}
	return v <= 255
}

// parseIPv6 checks IPv6-addr (RFC 5321 §4.1.3) and returns it in RFC 5952
// form. Zones and plain IPv4 are refused.
func parseIPv6(s string) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", pathErr(ErrPathSyntax, "bad IPv6 address literal")
	}
	// RFC 5321 §4.1.3: "::" stands for at least 2 groups, so at most 6
	// groups (an IPv4 tail counts 2) may accompany it.
	if strings.Contains(s, "::") && ipv6Groups(s) > 6 {
		return "", pathErr(ErrPathSyntax, "bad IPv6 address literal")
	}
	return a.String(), nil
}

// ipv6Groups counts the 16-bit groups written out in s.
func ipv6Groups(s string) int {
	n := 0
	for _, g := range strings.Split(s, ":") {
		switch {
		case strings.Contains(g, "."):
			n += 2
		case g != "":
			n++
		}
	}
	return n
}
