package smtp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var (
	optNone = PathOptions{}
	optNull = PathOptions{AllowNull: true}
	optUTF8 = PathOptions{UTF8: true}
	optBoth = PathOptions{AllowNull: true, UTF8: true}
)

func TestParsePathValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		opts PathOptions
		want Path
		rest string
	}{
		{"simple", "<a@b.example>", optNone, Path{Addr: Address{"a", "b.example"}}, ""},
		{"single label domain", "<postmaster@localhost>", optNone, Path{Addr: Address{"postmaster", "localhost"}}, ""},
		{"all atext", "<!#$%&'*+-/=?^_`{|}~@x.example>", optNone, Path{Addr: Address{"!#$%&'*+-/=?^_`{|}~", "x.example"}}, ""},
		{"dotted local", "<first.m.last@x.example>", optNone, Path{Addr: Address{"first.m.last", "x.example"}}, ""},
		{"local case kept", "<John.Doe@x.example>", optNone, Path{Addr: Address{"John.Doe", "x.example"}}, ""},
		{"domain lower-cased", "<a@Mail.EXAMPLE.Com>", optNone, Path{Addr: Address{"a", "mail.example.com"}}, ""},
		{"hyphen and digits", "<a@1-2.x-y.example>", optNone, Path{Addr: Address{"a", "1-2.x-y.example"}}, ""},
		{"double hyphen ldh", "<a@r3--sn-x.example>", optNone, Path{Addr: Address{"a", "r3--sn-x.example"}}, ""},
		{"numeric label not last", "<a@123.example>", optNone, Path{Addr: Address{"a", "123.example"}}, ""},
		{"quoted space", `<"john doe"@x.example>`, optNone, Path{Addr: Address{"john doe", "x.example"}}, ""},
		{"quoted pairs", `<"a\"b\\c\ d"@x.example>`, optNone, Path{Addr: Address{`a"b\c d`, "x.example"}}, ""},
		{"quoted at", `<"relay@other.test"@ours.test>`, optNone, Path{Addr: Address{"relay@other.test", "ours.test"}}, ""},
		{"quoted angle", `<"a>b"@x.example>`, optNone, Path{Addr: Address{"a>b", "x.example"}}, ""},
		{"quoted dots", `<".a..b."@x.example>`, optNone, Path{Addr: Address{".a..b.", "x.example"}}, ""},
		{"quoted unnecessary", `<"abc"@x.example>`, optNone, Path{Addr: Address{"abc", "x.example"}}, ""},
		{"ipv4 literal", "<a@[192.0.2.1]>", optNone, Path{Addr: Address{"a", "[192.0.2.1]"}}, ""},
		{"ipv4 zero", "<a@[0.0.0.0]>", optNone, Path{Addr: Address{"a", "[0.0.0.0]"}}, ""},
		{"ipv4 max", "<a@[255.255.255.255]>", optNone, Path{Addr: Address{"a", "[255.255.255.255]"}}, ""},
		{"ipv6 literal", "<a@[IPv6:2001:db8::1]>", optNone, Path{Addr: Address{"a", "[IPv6:2001:db8::1]"}}, ""},
		{"ipv6 canonicalised", "<a@[ipv6:2001:DB8:0:0:0:0:0:1]>", optNone, Path{Addr: Address{"a", "[IPv6:2001:db8::1]"}}, ""},
		{"ipv6 v4 tail", "<a@[IPv6:::ffff:192.0.2.1]>", optNone, Path{Addr: Address{"a", "[IPv6:::ffff:192.0.2.1]"}}, ""},
		{"ipv6 full", "<a@[IPv6:1:2:3:4:5:6:7:8]>", optNone, Path{Addr: Address{"a", "[IPv6:1:2:3:4:5:6:7:8]"}}, ""},
		{"ipv6 six around ::", "<a@[IPv6:1:2:3::6:7:8]>", optNone, Path{Addr: Address{"a", "[IPv6:1:2:3::6:7:8]"}}, ""},
		{"route one", "<@ours.test:user@other.test>", optNone, Path{Route: []string{"ours.test"}, Addr: Address{"user", "other.test"}}, ""},
		{"route two", "<@A.example,@b.example:u@c.example>", optNone, Path{Route: []string{"a.example", "b.example"}, Addr: Address{"u", "c.example"}}, ""},
		{"null allowed", "<>", optNull, Path{Null: true}, ""},
		{"null with params", "<> SIZE=10", optNull, Path{Null: true}, "SIZE=10"},
		{"params", "<a@b.example> SIZE=100 BODY=8BITMIME", optNone, Path{Addr: Address{"a", "b.example"}}, "SIZE=100 BODY=8BITMIME"},
		{"params many spaces", "<a@b.example>   SMTPUTF8 ", optNone, Path{Addr: Address{"a", "b.example"}}, "SMTPUTF8 "},
		{"trailing space only", "<a@b.example> ", optNone, Path{Addr: Address{"a", "b.example"}}, ""},
		{"percent hack", "<user%other.test@ours.test>", optNone, Path{Addr: Address{"user%other.test", "ours.test"}}, ""},
		{"bang path", "<other!user@ours.test>", optNone, Path{Addr: Address{"other!user", "ours.test"}}, ""},
		{"utf8 local", "<用户@example.com>", optUTF8, Path{Addr: Address{"用户", "example.com"}}, ""},
		{"utf8 quoted", `<"jöhn dœ"@example.com>`, optUTF8, Path{Addr: Address{"jöhn dœ", "example.com"}}, ""},
		{"idn", "<用户@例子.广告>", optUTF8, Path{Addr: Address{"用户", "例子.广告"}}, ""},
		{"idn upper-case", "<a@BÜCHER.example>", optUTF8, Path{Addr: Address{"a", "bücher.example"}}, ""},
		{"idn nfd to nfc", "<a@bu\u0308cher.example>", optUTF8, Path{Addr: Address{"a", "bücher.example"}}, ""},
		{"idn sharp s kept", "<a@Straße.example>", optUTF8, Path{Addr: Address{"a", "straße.example"}}, ""},
		{"a-label kept", "<a@XN--BCHER-KVA.example>", optNone, Path{Addr: Address{"a", "xn--bcher-kva.example"}}, ""},
		{"utf8 route", "<@例子.广告:a@b.example>", optUTF8, Path{Route: []string{"例子.广告"}, Addr: Address{"a", "b.example"}}, ""},
		{"utf8 and null", "<>", optBoth, Path{Null: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, rest, err := ParsePath(tt.in, tt.opts)
			if err != nil {
				t.Fatalf("ParsePath(%q) error: %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) || rest != tt.rest {
				t.Errorf("ParsePath(%q) = %+v, %q; want %+v, %q", tt.in, got, rest, tt.want, tt.rest)
			}
		})
	}
}

func TestParsePathInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		opts PathOptions
		want error
	}{
		{"empty", "", optBoth, ErrPathSyntax},
		{"no brackets", "a@b.example", optBoth, ErrPathSyntax},
		{"no closing bracket", "<a@b.example", optBoth, ErrPathSyntax},
		{"leading space", " <a@b.example>", optBoth, ErrPathSyntax},
		{"junk after path", "<a@b.example>SIZE=1", optBoth, ErrPathSyntax},
		{"tab after path", "<a@b.example>\tSIZE=1", optBoth, ErrPathSyntax},
		{"double close", "<a@b.example>>", optBoth, ErrPathSyntax},
		{"null not allowed", "<>", optUTF8, ErrPathSyntax},
		{"null with space", "< >", optBoth, ErrPathSyntax},
		{"space inside", "< a@b.example>", optBoth, ErrPathSyntax},
		{"space before at", "<a @b.example>", optBoth, ErrPathSyntax},
		{"space after at", "<a@ b.example>", optBoth, ErrPathSyntax},
		{"space before close", "<a@b.example >", optBoth, ErrPathSyntax},
		{"no at", "<postmaster>", optBoth, ErrPathSyntax},
		{"empty local", "<@b.example>", optBoth, ErrPathSyntax},
		{"empty quoted local", `<""@b.example>`, optBoth, ErrPathSyntax},
		{"empty domain", "<a@>", optBoth, ErrPathSyntax},
		{"two ats", "<a@b@c.example>", optBoth, ErrPathSyntax},
		{"leading dot", "<.a@b.example>", optBoth, ErrPathSyntax},
		{"trailing dot local", "<a.@b.example>", optBoth, ErrPathSyntax},
		{"double dot local", "<a..b@b.example>", optBoth, ErrPathSyntax},
		{"trailing dot domain", "<a@b.example.>", optBoth, ErrPathSyntax},
		{"leading dot domain", "<a@.b.example>", optBoth, ErrPathSyntax},
		{"double dot domain", "<a@b..example>", optBoth, ErrPathSyntax},
		{"leading hyphen label", "<a@-b.example>", optBoth, ErrPathSyntax},
		{"trailing hyphen label", "<a@b-.example>", optBoth, ErrPathSyntax},
		{"underscore domain", "<a@b_c.example>", optBoth, ErrPathSyntax},
		{"numeric tld", "<a@192.0.2.1>", optBoth, ErrPathSyntax},
		{"label 64", "<a@" + strings.Repeat("x", 64) + ".example>", optBoth, ErrPathSyntax},
		{"special in local", "<a(b)@c.example>", optBoth, ErrPathSyntax},
		{"comma in local", "<a,b@c.example>", optBoth, ErrPathSyntax},
		{"unterminated quote", `<"abc@b.example>`, optBoth, ErrPathSyntax},
		{"quote in middle", `<a"b"@c.example>`, optBoth, ErrPathSyntax},
		{"quoted then atom", `<"a"b@c.example>`, optBoth, ErrPathSyntax},
		{"quoted pair at end", `<"a\`, optBoth, ErrPathSyntax},
		{"quoted pair utf8", "<\"a\\ü\"@c.example>", optBoth, ErrPathSyntax},
		{"quoted tab", "<\"a\tb\"@c.example>", optBoth, ErrPathSyntax},
		{"quoted pair tab", "<\"a\\\tb\"@c.example>", optBoth, ErrPathSyntax},
		{"literal unclosed", "<a@[192.0.2.1>", optBoth, ErrPathSyntax},
		{"literal junk after", "<a@[192.0.2.1]x>", optBoth, ErrPathSyntax},
		{"literal three octets", "<a@[192.0.2]>", optBoth, ErrPathSyntax},
		{"literal five octets", "<a@[192.0.2.1.5]>", optBoth, ErrPathSyntax},
		{"literal octet 256", "<a@[192.0.2.256]>", optBoth, ErrPathSyntax},
		{"literal leading zero", "<a@[192.0.2.01]>", optBoth, ErrPathSyntax},
		{"literal double zero", "<a@[192.0.2.00]>", optBoth, ErrPathSyntax},
		{"literal hex", "<a@[0x7f.0.0.1]>", optBoth, ErrPathSyntax},
		{"literal empty", "<a@[]>", optBoth, ErrPathSyntax},
		{"literal name", "<a@[b.example]>", optBoth, ErrPathSyntax},
		{"ipv6 untagged", "<a@[2001:db8::1]>", optBoth, ErrPathSyntax},
		{"ipv6 with v4 only", "<a@[IPv6:192.0.2.1]>", optBoth, ErrPathSyntax},
		{"ipv6 zone", "<a@[IPv6:fe80::1%eth0]>", optBoth, ErrPathSyntax},
		{"ipv6 bad", "<a@[IPv6:2001:db8:::1]>", optBoth, ErrPathSyntax},
		{"ipv6 :: for one group", "<a@[IPv6:1:2:3:4:5:6::8]>", optBoth, ErrPathSyntax},
		{"general literal", "<a@[x400:foo]>", optBoth, ErrPathSyntax},
		{"route literal", "<@[192.0.2.1]:a@b.example>", optBoth, ErrPathSyntax},
		{"route without colon", "<@a.example,b@c.example>", optBoth, ErrPathSyntax},
		{"route empty domain", "<@:a@b.example>", optBoth, ErrPathSyntax},
		{"route missing at", "<@a.example,b.example:c@d.example>", optBoth, ErrPathSyntax},
		{"route only", "<@a.example:>", optBoth, ErrPathSyntax},
		{"utf8 local without option", "<用户@example.com>", optNull, ErrNeedsUTF8},
		{"utf8 quoted without option", "<\"jöhn\"@example.com>", optNull, ErrNeedsUTF8},
		{"idn without option", "<a@例子.广告>", optNull, ErrNeedsUTF8},
		{"utf8 route without option", "<@例子.广告:a@b.example>", optNull, ErrNeedsUTF8},
		{"invalid utf8 local", "<a\xffb@c.example>", optBoth, ErrPathSyntax},
		{"invalid utf8 local no option", "<a\xffb@c.example>", optNull, ErrPathSyntax},
		{"invalid utf8 domain", "<a@b\xff.example>", optBoth, ErrPathSyntax},
		{"truncated utf8", "<a\xe4\xbd@c.example>", optBoth, ErrPathSyntax},
		{"overlong utf8 slash", "<a\xc0\xafb@c.example>", optBoth, ErrPathSyntax},
		{"c1 control local", "<a\u0085b@c.example>", optBoth, ErrPathSyntax},
		{"line separator local", "<a\u2028b@c.example>", optBoth, ErrPathSyntax},
		{"c1 control quoted", "<\"a\u0085b\"@c.example>", optBoth, ErrPathSyntax},
		{"c1 control domain", "<a@b\u0085c.example>", optBoth, ErrPathSyntax},
		{"fullwidth domain", "<a@ｅｘａｍｐｌｅ.com>", optBoth, ErrPathSyntax},
		{"ideographic full stop", "<a@ours。test>", optBoth, ErrPathSyntax},
		{"fullwidth full stop", "<a@例子．广告>", optBoth, ErrPathSyntax},
		{"idn case mapping differs", "<a@İ.example>", optBoth, ErrPathSyntax},
		{"bad punycode", "<a@xn--zz.example>", optBoth, ErrPathSyntax},
		{"punycode of ascii", "<a@xn--abc-.example>", optBoth, ErrPathSyntax},
		{"idn with bad hyphens", "<a@ab--cd.bücher.example>", optBoth, ErrPathSyntax},
		{"idn symbol", "<a@☃\u200d.example>", optBoth, ErrPathSyntax},
		{"idn at sign", "<a@例@子.广告>", optBoth, ErrPathSyntax},
		{"idn space", "<a@例 子.广告>", optBoth, ErrPathSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, rest, err := ParsePath(tt.in, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParsePath(%q) = %+v, %q, %v; want %v", tt.in, p, rest, err, tt.want)
			}
		})
	}
}

// TestParsePathRelayMatrix runs the nmap smtp-open-relay matrix
// (security.md §2.3). Every string must be refused or name, as Domain,
// exactly the last domain written in it: never a domain hidden in the
// local part or in a source route.
func TestParsePathRelayMatrix(t *testing.T) {
	t.Parallel()
	expand := strings.NewReplacer("D", "other.test", "S", "ours.test", "IP", "192.0.2.1").Replace
	tests := []struct {
		path   string // as in security.md §2.3
		opts   PathOptions
		local  string // "" when refused
		domain string
	}{
		// MAIL FROM.
		{"<>", optNull, "", ""},
		{"antispam@D", optNull, "antispam", "other.test"},
		{"antispam@S", optNull, "antispam", "ours.test"},
		{"antispam@[IP]", optNull, "antispam", "[192.0.2.1]"},
		// RCPT TO.
		{"relaytest@D", optNone, "relaytest", "other.test"},
		{"relaytest%D@[IP]", optNone, "relaytest%other.test", "[192.0.2.1]"},
		{"relaytest%D@S", optNone, "relaytest%other.test", "ours.test"},
		{`"relaytest@D"`, optNone, "", ""},
		{`"relaytest%D"`, optNone, "", ""},
		{"relaytest@D@[IP]", optNone, "", ""},
		{`"relaytest@D"@[IP]`, optNone, "relaytest@other.test", "[192.0.2.1]"},
		{"relaytest@D@S", optNone, "", ""},
		{"@[IP]:relaytest@D", optNone, "", ""}, // At-domain takes no literal
		{"@S:relaytest@D", optNone, "relaytest", "other.test"},
		{"D!relaytest", optNone, "", ""},
		{"D!relaytest@[IP]", optNone, "other.test!relaytest", "[192.0.2.1]"},
		{"D!relaytest@S", optNone, "other.test!relaytest", "ours.test"},
	}
	for _, tt := range tests {
		for _, in := range []string{expand(tt.path), "<" + expand(tt.path) + ">"} {
			t.Run(in, func(t *testing.T) {
				t.Parallel()
				for _, opts := range []PathOptions{tt.opts, {AllowNull: tt.opts.AllowNull, UTF8: true}} {
					checkRelayRow(t, in, opts, tt.local, tt.domain)
				}
			})
		}
	}
}

func checkRelayRow(t *testing.T, in string, opts PathOptions, local, domain string) {
	t.Helper()
	p, _, err := ParsePath(in, opts)
	bare := !strings.HasPrefix(in, "<")
	switch {
	case in == "<>":
		if err != nil || !p.Null {
			t.Errorf("ParsePath(%q) = %+v, %v; want null path", in, p, err)
		}
	case local == "" || bare:
		if !errors.Is(err, ErrPathSyntax) {
			t.Errorf("ParsePath(%q) = %+v, %v; want ErrPathSyntax", in, p, err)
		}
	case err != nil:
		t.Errorf("ParsePath(%q): %v", in, err)
	default:
		last := in[strings.LastIndexByte(in, '@')+1 : len(in)-1]
		if p.Addr.Domain != domain || p.Addr.Domain != last || p.Addr.Local != local {
			t.Errorf("ParsePath(%q) = %q at %q; want %q at %q (last domain %q)", in, p.Addr.Local, p.Addr.Domain, local, domain, last)
		}
	}
}

// longDomain returns a valid domain of exactly n octets.
func longDomain(n int) string {
	var labels []string
	for n > maxLabelLen {
		k := min(maxLabelLen, n-2)
		labels = append(labels, strings.Repeat("a", k))
		n -= k + 1
	}
	return strings.Join(append(labels, strings.Repeat("b", n)), ".")
}

func TestParsePathLimits(t *testing.T) {
	t.Parallel()
	l64, l65 := strings.Repeat("l", 64), strings.Repeat("l", 65)
	q64 := `"` + strings.Repeat(" ", 62) + `"`
	q65 := `"` + strings.Repeat(" ", 63) + `"`
	tests := []struct {
		name   string
		in     string
		want   error
		octets int // length of in, checked when not 0
	}{
		{"local 64", "<" + l64 + "@x.example>", nil, 0},
		{"local 65", "<" + l65 + "@x.example>", ErrPathTooLong, 0},
		{"quoted local 64 with quotes", "<" + q64 + "@x.example>", nil, 0},
		{"quoted local 65 with quotes", "<" + q65 + "@x.example>", ErrPathTooLong, 0},
		{"path 256", "<" + l64 + "@" + longDomain(189) + ">", nil, 256},
		{"path 257", "<" + l64 + "@" + longDomain(190) + ">", ErrPathTooLong, 257},
		{"path 256 with route", "<@r.example:" + l64 + "@" + longDomain(178) + ">", nil, 256},
		{"path 257 with route", "<@r.example:" + l64 + "@" + longDomain(179) + ">", ErrPathTooLong, 257},
		{"label 63", "<a@" + strings.Repeat("x", 63) + ".example>", nil, 0},
		{"label 64", "<a@" + strings.Repeat("x", 64) + ".example>", ErrPathSyntax, 0},
		{"domain 256 in path", "<a@" + longDomain(256) + ">", ErrPathTooLong, 0},
		{"u-label a-label 63", "<a@ü" + strings.Repeat("x", 55) + ".example>", nil, 0},
		{"u-label a-label 64", "<a@ü" + strings.Repeat("x", 56) + ".example>", ErrPathSyntax, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.octets != 0 && len(tt.in) != tt.octets {
				t.Fatalf("test input is %d octets, want %d", len(tt.in), tt.octets)
			}
			_, _, err := ParsePath(tt.in, optUTF8)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("ParsePath(%d octets) error %v, want %v", len(tt.in), err, tt.want)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		utf8 bool
		want Address
		err  error
	}{
		{"a@b.example", false, Address{"a", "b.example"}, nil},
		{`"a b"@B.Example`, false, Address{"a b", "b.example"}, nil},
		{"a@[IPv6:::1]", false, Address{"a", "[IPv6:::1]"}, nil},
		{"用户@例子.广告", true, Address{"用户", "例子.广告"}, nil},
		{"用户@例子.广告", false, Address{}, ErrNeedsUTF8},
		{"a@" + longDomain(255), false, Address{"a", longDomain(255)}, nil},
		{"a@" + longDomain(256), false, Address{}, ErrPathTooLong},
		{strings.Repeat("l", 64) + "@x.example", false, Address{strings.Repeat("l", 64), "x.example"}, nil},
		{strings.Repeat("l", 65) + "@x.example", false, Address{}, ErrPathTooLong},
		{"<a@b.example>", false, Address{}, ErrPathSyntax},
		{"a@b.example>", false, Address{}, ErrPathSyntax},
		{"a@b.example ", false, Address{}, ErrPathSyntax},
		{"@a.example:b@c.example", false, Address{}, ErrPathSyntax},
		{"a@b@c.example", false, Address{}, ErrPathSyntax},
		{"a", false, Address{}, ErrPathSyntax},
		{"", false, Address{}, ErrPathSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAddress(tt.in, tt.utf8)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("ParseAddress(%q) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

// TestParsePathBadBytes puts CR, LF, NUL and other controls at every
// position of a command argument: the path must be refused or, after
// the path, the parameters (SMTP smuggling, security.md §2.1, §2.6).
func TestParsePathBadBytes(t *testing.T) {
	t.Parallel()
	const base = `<@r.example:"a b"@x.example> SIZE=10`
	for _, bad := range []string{"\r", "\n", "\r\n", "\x00", "\x7f", "\t", "\x1b", "\u0085", "\u2029"} {
		for i := 0; i <= len(base); i++ {
			in := base[:i] + bad + base[i:]
			_, rest, err := ParsePath(in, optBoth)
			if err == nil {
				_, err = ParseParams(rest, true)
			}
			if err == nil {
				t.Errorf("ParsePath+ParseParams(%q) accepted", in)
			}
		}
	}
}

func TestAddressMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    Address
		str     string
		literal bool
		ascii   bool
		aDomain string
	}{
		{Address{}, "", false, true, ""},
		{Address{"a", "b.example"}, "a@b.example", false, true, "b.example"},
		{Address{"a.b", "b.example"}, "a.b@b.example", false, true, "b.example"},
		{Address{"a b", "b.example"}, `"a b"@b.example`, false, true, "b.example"},
		{Address{`a"b\c`, "b.example"}, `"a\"b\\c"@b.example`, false, true, "b.example"},
		{Address{"relay@other.test", "ours.test"}, `"relay@other.test"@ours.test`, false, true, "ours.test"},
		{Address{".a", "b.example"}, `".a"@b.example`, false, true, "b.example"},
		{Address{"a.", "b.example"}, `"a."@b.example`, false, true, "b.example"},
		{Address{"a..b", "b.example"}, `"a..b"@b.example`, false, true, "b.example"},
		{Address{"a", "[192.0.2.1]"}, "a@[192.0.2.1]", true, true, "[192.0.2.1]"},
		{Address{"a", "[IPv6:2001:db8::1]"}, "a@[IPv6:2001:db8::1]", true, true, "[IPv6:2001:db8::1]"},
		{Address{"用户", "例子.广告"}, "用户@例子.广告", false, false, "xn--fsqu00a.xn--4rr70v"},
		{Address{"a", "bücher.example"}, "a@bücher.example", false, false, "xn--bcher-kva.example"},
		{Address{"jöhn dœ", "example.com"}, `"jöhn dœ"@example.com`, false, false, "example.com"},
		{Address{"a", "xn--bcher-kva.example"}, "a@xn--bcher-kva.example", false, true, "xn--bcher-kva.example"},
		{Address{"a", "ab--cd.bücher.example"}, "a@ab--cd.bücher.example", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			t.Parallel()
			a := tt.addr
			if a.String() != tt.str || a.IsLiteral() != tt.literal || a.IsASCII() != tt.ascii || a.ASCIIDomain() != tt.aDomain {
				t.Errorf("%+v: String %q IsLiteral %v IsASCII %v ASCIIDomain %q; want %q %v %v %q",
					a, a.String(), a.IsLiteral(), a.IsASCII(), a.ASCIIDomain(), tt.str, tt.literal, tt.ascii, tt.aDomain)
			}
			if a.IsZero() != (tt.str == "") {
				t.Errorf("%+v: IsZero %v", a, a.IsZero())
			}
		})
	}
}

// TestStringRoundTrip checks that String writes what the parsers read back
// to the same Address, for parsed addresses and hand-built ones.
func TestStringRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []string{
		"<a@b.example>",
		`<"a b"@b.example>`,
		`<"a\"b\\c"@b.example>`,
		`<"\a\b\c"@b.example>`,
		`<"relay@other.test"@ours.test>`,
		`<" "@b.example>`,
		`<"a..b"@b.example>`,
		`<"<>"@b.example>`,
		"<用户@例子.广告>",
		`<"用 户"@例子.广告>`,
		"<a@[IPv6:2001:DB8::1]>",
		"<@r.example:a@B.EXAMPLE>",
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			p, _, err := ParsePath(in, optUTF8)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", in, err)
			}
			s := p.String()
			q, _, err := ParsePath(s, optUTF8)
			if err != nil || q.Addr != p.Addr {
				t.Errorf("ParsePath(%q) = %+v, %v; want %+v", s, q.Addr, err, p.Addr)
			}
			a, err := ParseAddress(p.Addr.String(), true)
			if err != nil || a != p.Addr {
				t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", p.Addr.String(), a, err, p.Addr)
			}
		})
	}
}

func TestPathString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Path
		want string
	}{
		{Path{Null: true}, "<>"},
		{Path{Addr: Address{"a", "b.example"}}, "<a@b.example>"},
		{Path{Route: []string{"r.example"}, Addr: Address{"a b", "b.example"}}, `<"a b"@b.example>`},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// TestFromAddrSpec: an addr-spec with its quotes removed gets them back
// where RFC 5321 needs them, so its text stays one address; strings that
// make no address are refused.
func TestFromAddrSpec(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"bob@example.test": "bob@example.test",
		"bob@example.test> ORCPT=rfc822;x@partner.example": `"bob@example.test> ORCPT=rfc822;x"@partner.example`,
		"a b@x.test":        `"a b"@x.test`,
		"a@b@x.test":        `"a@b"@x.test`,
		"jörg@exämple.test": "jörg@exämple.test",
	} {
		a, err := FromAddrSpec(in)
		if err != nil || a.String() != want {
			t.Errorf("%q: %q %v, want %q", in, a.String(), err, want)
		}
	}
	for _, bad := range []string{"", "bob", "@x.test", "a@", "a@b> NOTIFY=SUCCESS", "a@[1.2.3", "a\r\n@x.test"} {
		if a, err := FromAddrSpec(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, a)
		}
	}
}

// TestSendRefusesBadEnvelope: the client sends no command for an
// envelope whose address is no mailbox.
func TestSendRefusesBadEnvelope(t *testing.T) {
	t.Parallel()
	for _, env := range []Envelope{
		{From: "a@b> RET=FULL", Rcpts: []EnvelopeRcpt{{Addr: "c@d.test"}}},
		{From: "a@b.test", Rcpts: []EnvelopeRcpt{{Addr: "c@d.test> NOTIFY=SUCCESS"}}},
	} {
		if err := env.check(); err == nil {
			t.Errorf("%+v accepted", env)
		}
	}
	if err := (Envelope{Rcpts: []EnvelopeRcpt{{Addr: `"a b"@d.test`}}}).check(); err != nil {
		t.Errorf("a null sender and a quoted local part: %v", err)
	}
}
