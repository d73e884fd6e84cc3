package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseBoth parses msg with the default buffer and with the smallest one
// bufio allows (16 octets: every long line goes through ErrBufferFull),
// and fails unless both agree and the structure is sound.
func parseBoth(t *testing.T, msg string, lim Limits) (*Part, error) {
	t.Helper()
	p, err := parseStream(strings.NewReader(msg), lim)
	q, qerr := newStream(strings.NewReader(msg), lim, 16).run()
	if !reflect.DeepEqual(p, q) || !errors.Is(qerr, err) {
		t.Fatalf("buffer sizes disagree:\n%+v %v\n%+v %v", p, err, q, qerr)
	}
	if err == nil {
		if cerr := checkStructure([]byte(msg), p, lim); cerr != nil {
			t.Fatal(cerr)
		}
	}
	return p, err
}

// checkStructure verifies the invariants of a parse: offsets ordered and
// nested, siblings in order, BodyLines as counted from the octets, depth
// and part count within the limits. It walks without recursion.
func checkStructure(data []byte, root *Part, lim Limits) error {
	lim = lim.withDefaults()
	type item struct {
		p      *Part
		lo, hi int64
		depth  int
	}
	stack, n := []item{{root, 0, int64(len(data)), 0}}, 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := it.p
		n++
		if p.HeaderStart < it.lo || p.HeaderStart > p.BodyStart || p.BodyStart > p.End || p.End > it.hi {
			return fmt.Errorf("offsets %d %d %d outside [%d,%d]", p.HeaderStart, p.BodyStart, p.End, it.lo, it.hi)
		}
		if it.depth > lim.MaxDepth {
			return fmt.Errorf("depth %d over %d", it.depth, lim.MaxDepth)
		}
		if got := countLines(data[p.BodyStart:p.End]); got != p.BodyLines {
			return fmt.Errorf("BodyLines %d, counted %d in %q", p.BodyLines, got, data[p.BodyStart:p.End])
		}
		if p.Type == "" || p.Subtype == "" || p.Encoding == "" {
			return fmt.Errorf("missing defaults: %+v", p)
		}
		lo := p.BodyStart
		for _, c := range p.Parts {
			stack = append(stack, item{c, lo, p.End, it.depth + 1})
			lo = c.End
		}
		if p.Message != nil {
			stack = append(stack, item{p.Message, p.BodyStart, p.End, it.depth + 1})
		}
	}
	if n > lim.MaxParts {
		return fmt.Errorf("%d parts over %d", n, lim.MaxParts)
	}
	return nil
}

func countLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte{'\n'}))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// shape renders the tree: type/subtype, children in (), message in [].
func shape(p *Part) string {
	s := p.Type + "/" + p.Subtype
	if len(p.Parts) > 0 {
		var kids []string
		for _, c := range p.Parts {
			kids = append(kids, shape(c))
		}
		s += "(" + strings.Join(kids, ",") + ")"
	}
	if p.Message != nil {
		s += "[" + shape(p.Message) + "]"
	}
	return s
}

// at finds a part by path: "" is the root, "2.1" the first child of the
// second child, "m" the encapsulated message.
func at(p *Part, path string) *Part {
	if path == "" {
		return p
	}
	for _, el := range strings.Split(path, ".") {
		if el == "m" {
			p = p.Message
			continue
		}
		n, _ := strconv.Atoi(el)
		if p == nil || n < 1 || n > len(p.Parts) {
			return nil
		}
		p = p.Parts[n-1]
	}
	return p
}

// bodyWant is what one part must hold.
type bodyWant struct {
	path, body string
	lines      int64
}

func TestParseStructureMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg string
		lf        bool // keep bare LF line ends
		shape     string
		bodies    []bodyWant
		check     func(t *testing.T, msg string, p *Part)
	}{
		{
			name: "simple text",
			msg: `From: Alice <alice@example.org>
To: bob@example.net
Subject: Hello
Date: Mon, 2 Jun 2025 10:00:00 +0000
Message-ID: <1@example.org>
Content-Type: text/plain; charset=utf-8

Hi Bob,

See you.
`,
			shape:  "text/plain",
			bodies: []bodyWant{{"", "Hi Bob,\r\n\r\nSee you.\r\n", 3}},
			check: func(t *testing.T, msg string, p *Part) {
				if !strings.HasSuffix(msg[p.HeaderStart:p.BodyStart], "charset=utf-8\r\n\r\n") || p.Get("subject") != "Hello" || p.Param("CHARSET") != "utf-8" {
					t.Errorf("header %q, %+v", msg[p.HeaderStart:p.BodyStart], p.Header)
				}
			},
		},
		{
			name: "multipart/alternative",
			msg: `Content-Type: multipart/alternative; boundary="alt"

This is a multi-part message in MIME format.
--alt
Content-Type: text/plain; charset=us-ascii

plain
--alt
Content-Type: text/html; charset=us-ascii

<p>html</p>
--alt--
`,
			shape:  "multipart/alternative(text/plain,text/html)",
			bodies: []bodyWant{{"1", "plain", 1}, {"2", "<p>html</p>", 1}},
			check: func(t *testing.T, msg string, p *Part) {
				if got := msg[p.Parts[0].HeaderStart:p.Parts[0].BodyStart]; got != "Content-Type: text/plain; charset=us-ascii\r\n\r\n" {
					t.Errorf("part 1 header %q", got)
				}
			},
		},
		{
			name: "multipart/mixed with base64 attachment",
			msg: `Subject: report
Content-Type: multipart/mixed; boundary=mix

--mix
Content-Type: text/plain

See attached.

--mix
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: Attachment; filename="report.pdf"; size=12
Content-Transfer-Encoding: BASE64

JVBERi0xLjQKJcfs
j6IKMSAwIG9iago=
--mix--
epilogue
`,
			shape:  "multipart/mixed(text/plain,application/pdf)",
			bodies: []bodyWant{{"1", "See attached.\r\n", 1}, {"2", "JVBERi0xLjQKJcfs\r\nj6IKMSAwIG9iago=", 2}},
			check: func(t *testing.T, msg string, p *Part) {
				a := p.Parts[1]
				want := []Param{{"filename", "report.pdf"}, {"size", "12"}}
				if a.Encoding != "base64" || a.Disposition != "attachment" || !reflect.DeepEqual(a.DispositionParams, want) || a.Param("name") != "report.pdf" {
					t.Errorf("attachment %+v", a)
				}
			},
		},
		{
			name: "multipart/related inside alternative",
			msg: `Content-Type: multipart/alternative; boundary=a1

--a1
Content-Type: text/plain

text
--a1
Content-Type: multipart/related; boundary=r1; type="text/html"

--r1
Content-Type: text/html

<img src="cid:logo">
--r1
Content-Type: image/png
Content-ID: <logo>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--r1--

--a1--
`,
			shape: "multipart/alternative(text/plain,multipart/related(text/html,image/png))",
			bodies: []bodyWant{
				{"1", "text", 1}, {"2.1", "<img src=\"cid:logo\">", 1}, {"2.2", "iVBORw0KGgo=", 1},
				{"2", "--r1\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:logo\">\r\n--r1\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r1--\r\n", 11},
			},
			check: func(t *testing.T, msg string, p *Part) {
				if r := p.Parts[1]; r.Param("type") != "text/html" || r.Parts[1].ID != "<logo>" {
					t.Errorf("related %+v", r)
				}
			},
		},
		{
			name: "message/rfc822 attachment with its own multipart",
			msg: `Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain

Forwarded.
--outer
Content-Type: message/rfc822
Content-Disposition: attachment

From: carol@example.com
Subject: inner
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

inner plain
--inner
Content-Type: text/html

<b>inner</b>
--inner--
--outer--
`,
			shape: "multipart/mixed(text/plain,message/rfc822[multipart/alternative(text/plain,text/html)])",
			bodies: []bodyWant{
				{"2.m.1", "inner plain", 1}, {"2.m.2", "<b>inner</b>", 1},
				{"2", "From: carol@example.com\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>inner</b>\r\n--inner--", 13},
			},
			check: func(t *testing.T, msg string, p *Part) {
				r := p.Parts[1]
				if m := r.Message; m.HeaderStart != r.BodyStart || m.End != r.End || m.Get("Subject") != "inner" {
					t.Errorf("message %+v in %+v", m, r)
				}
			},
		},
		{
			name: "multipart/digest default types",
			msg: `Content-Type: multipart/digest; boundary=dig

--dig

From: a@example.org
Subject: one

first
--dig
Content-Type: text/plain

not a message
--dig--
`,
			shape:  "multipart/digest(message/rfc822[text/plain],text/plain)",
			bodies: []bodyWant{{"1.m", "first", 1}, {"2", "not a message", 1}},
			check: func(t *testing.T, msg string, p *Part) {
				if m := p.Parts[0].Message; m.Get("Subject") != "one" {
					t.Errorf("digest message %+v", m)
				}
			},
		},
		{
			name:   "missing close delimiter",
			msg:    "Content-Type: multipart/mixed; boundary=x\n\n--x\n\na\n--x\n\nb\nc\n",
			shape:  "multipart/mixed(text/plain,text/plain)",
			bodies: []bodyWant{{"1", "a", 1}, {"2", "b\r\nc\r\n", 2}},
		},
		{
			name: "inner boundary is a prefix of the outer, inner left open",
			msg: `Content-Type: multipart/mixed; boundary=frontier-2

--frontier-2
Content-Type: multipart/alternative; boundary=frontier

--frontier
Content-Type: text/plain

one
--frontier
Content-Type: text/plain

two
--frontier-2
Content-Type: text/plain

three
--frontier-2--
`,
			shape:  "multipart/mixed(multipart/alternative(text/plain,text/plain),text/plain)",
			bodies: []bodyWant{{"1.1", "one", 1}, {"1.2", "two", 1}, {"2", "three", 1}},
		},
		{
			name:   "delimiters with trailing white space",
			msg:    "Content-Type: multipart/mixed; boundary=x\n\n--x \t\n\na\n--x\t\n\nb\n--x-- \n",
			shape:  "multipart/mixed(text/plain,text/plain)",
			bodies: []bodyWant{{"1", "a", 1}, {"2", "b", 1}},
		},
		{
			name:   "lines that only start like a delimiter are body",
			msg:    "Content-Type: multipart/mixed; boundary=x\n\n--x\n\n--xy\n-- x\n--x-\n--x--z\n--x--\n",
			shape:  "multipart/mixed(text/plain)",
			bodies: []bodyWant{{"1", "--xy\r\n-- x\r\n--x-\r\n--x--z", 4}},
		},
		{
			name:   "LF-only message",
			msg:    "Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nlf body\nmore\n--x--\n",
			lf:     true,
			shape:  "multipart/mixed(text/plain)",
			bodies: []bodyWant{{"1", "lf body\nmore", 2}},
			check: func(t *testing.T, msg string, p *Part) {
				if got := msg[p.HeaderStart:p.BodyStart]; got != "Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n" {
					t.Errorf("header %q", got)
				}
			},
		},
		{
			name:   "no header/body separator",
			msg:    "Subject: x\nFrom: y@example.org\n",
			shape:  "text/plain",
			bodies: []bodyWant{{"", "", 0}},
			check: func(t *testing.T, msg string, p *Part) {
				if p.BodyStart != int64(len(msg)) || p.Get("From") != "y@example.org" {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name:   "empty body",
			msg:    "Subject: x\n\n",
			shape:  "text/plain",
			bodies: []bodyWant{{"", "", 0}},
		},
		{
			name:   "empty input",
			msg:    "",
			shape:  "text/plain",
			bodies: []bodyWant{{"", "", 0}},
		},
		{
			name:   "starts with a blank line: empty header",
			msg:    "\nSubject: not a header\n",
			shape:  "text/plain",
			bodies: []bodyWant{{"", "Subject: not a header\r\n", 1}},
			check: func(t *testing.T, msg string, p *Part) {
				if len(p.Header) != 0 {
					t.Errorf("header %+v", p.Header)
				}
			},
		},
		{
			name:   "multipart without boundary is opaque",
			msg:    "Content-Type: multipart/mixed\n\n--x\n\na\n--x--\n",
			shape:  "multipart/mixed",
			bodies: []bodyWant{{"", "--x\r\n\r\na\r\n--x--\r\n", 4}},
		},
		{
			name:   "boundary that never appears",
			msg:    "Content-Type: multipart/mixed; boundary=nope\n\n--x\n\na\n",
			shape:  "multipart/mixed",
			bodies: []bodyWant{{"", "--x\r\n\r\na\r\n", 3}},
		},
		{
			name:   "encoded message/rfc822 is opaque",
			msg:    "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp4\n",
			shape:  "message/rfc822",
			bodies: []bodyWant{{"", "U3ViamVjdDogeA0KDQp4\r\n", 1}},
		},
		{
			name:   "message/global is parsed",
			msg:    "Content-Type: message/global\n\nSubject: =?utf-8?q?x?=\n\ninner\n",
			shape:  "message/global[text/plain]",
			bodies: []bodyWant{{"m", "inner\r\n", 1}},
		},
		{
			name:   "part header ends at a delimiter without a blank line",
			msg:    "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\nSubject: no blank\n--x--\n",
			shape:  "multipart/mixed(message/rfc822[text/plain])",
			bodies: []bodyWant{{"1", "Subject: no blank", 1}, {"1.m", "", 0}},
			check: func(t *testing.T, msg string, p *Part) {
				m := p.Parts[0].Message
				if got := msg[m.HeaderStart:m.BodyStart]; got != "Subject: no blank" || m.Get("Subject") != "no blank" {
					t.Errorf("inner header %q", got)
				}
			},
		},
		{
			name:   "delimiters in the epilogue and preamble are ignored",
			msg:    "Content-Type: multipart/mixed; boundary=x\n\n--xx\n--x\n\na\n--x--\n--x\n\nnot a part\n",
			shape:  "multipart/mixed(text/plain)",
			bodies: []bodyWant{{"1", "a", 1}},
		},
		{
			name:   "empty parts",
			msg:    "Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n\n--x\n\n\n--x--",
			shape:  "multipart/mixed(text/plain,text/plain,text/plain)",
			bodies: []bodyWant{{"1", "", 0}, {"2", "", 0}, {"3", "", 0}, {"", "--x\r\n--x\r\n\r\n--x\r\n\r\n\r\n--x--", 7}},
		},
		{
			name:   "digest entry whose blank line is the line end before the delimiter",
			msg:    "Content-Type: multipart/digest; boundary=x\n\n--x\n\n\n--x--\n",
			shape:  "multipart/digest(message/rfc822[text/plain])",
			bodies: []bodyWant{{"1", "", 0}, {"1.m", "", 0}},
			check: func(t *testing.T, msg string, p *Part) {
				c := p.Parts[0]
				if got := msg[c.HeaderStart:c.BodyStart]; got != "\r\n" || c.Message.HeaderStart != c.End {
					t.Errorf("entry header %q, message %+v", got, c.Message)
				}
			},
		},
		{
			name:   "part opened just before an outer delimiter",
			msg:    "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\n--o--\n",
			shape:  "multipart/mixed(multipart/mixed(text/plain))",
			bodies: []bodyWant{{"1", "--i", 1}, {"1.1", "", 0}},
		},
		{
			name:   "bare CR is not a line end",
			msg:    "Subject: cr\n\na\rb\rc",
			shape:  "text/plain",
			bodies: []bodyWant{{"", "a\rb\rc", 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := tc.msg
			if !tc.lf {
				msg = crlf(msg)
			}
			p, err := parseBoth(t, msg, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := shape(p); got != tc.shape {
				t.Fatalf("shape %s, want %s", got, tc.shape)
			}
			for _, w := range tc.bodies {
				q := at(p, w.path)
				if got := msg[q.BodyStart:q.End]; got != w.body || q.BodyLines != w.lines {
					t.Errorf("part %q: body %q (%d lines), want %q (%d)", w.path, got, q.BodyLines, w.body, w.lines)
				}
			}
			if p.HeaderStart != 0 || p.End != int64(len(msg)) {
				t.Errorf("root [%d,%d) of %d", p.HeaderStart, p.End, len(msg))
			}
			if tc.check != nil {
				tc.check(t, msg, p)
			}
		})
	}
}

func TestParseStructureFields(t *testing.T) {
	t.Parallel()
	msg := crlf(`Subject: folded
	 subject  
Content-Type: Text/Plain;
 charset = "utf\"-8" (comment) ; format=flowed;
 name*0="long"; name*1*=UTF-8''%e2%82%ac
Content-Transfer-Encoding:   Quoted-Printable
Content-ID: <id@example.org>
Content-Description: a description
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Location: https://example.org/x
Content-Language: en, de-CH
Content-Disposition: INLINE
no colon here
X-Empty:

body`)
	p, err := parseBoth(t, msg, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Part{
		HeaderStart: 0, BodyStart: int64(len(msg) - 4), End: int64(len(msg)),
		Header: []Field{
			{"Subject", "folded subject"},
			{"Content-Type", `Text/Plain; charset = "utf\"-8" (comment) ; format=flowed; name*0="long"; name*1*=UTF-8''%e2%82%ac`},
			{"Content-Transfer-Encoding", "Quoted-Printable"},
			{"Content-ID", "<id@example.org>"},
			{"Content-Description", "a description"},
			{"Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="},
			{"Content-Location", "https://example.org/x"},
			{"Content-Language", "en, de-CH"},
			{"Content-Disposition", "INLINE"},
			{"X-Empty", ""},
		},
		Type: "text", Subtype: "plain",
		// RFC 2231 continuations are kept as separate raw parameters.
		Params:   []Param{{"charset", `utf"-8`}, {"format", "flowed"}, {"name*0", "long"}, {"name*1*", "UTF-8''%e2%82%ac"}},
		ID:       "<id@example.org>",
		Encoding: "quoted-printable", Description: "a description",
		MD5: "Q2hlY2sgSW50ZWdyaXR5IQ==", Location: "https://example.org/x",
		Disposition: "inline",
		Language:    []string{"en", "de-CH"},
		BodyLines:   1,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
}

func TestParseStructureLimits(t *testing.T) {
	t.Parallel()
	nested := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i)
		}
		return crlf(b.String() + "\nleaf\n")
	}
	wide := func(n int) string {
		return crlf("Content-Type: multipart/mixed; boundary=x\n\n" + strings.Repeat("--x\n\na\n", n) + "--x--\nepilogue\n")
	}
	for _, tc := range []struct {
		name      string
		msg       string
		lim       Limits
		depth     int // deepest part
		parts     int // parts in all, the root included
		lastBody  string
		lastIsTop bool // the deepest part's body, or the last child of the root
	}{
		{"depth within the limit", nested(3), Limits{MaxDepth: 3}, 3, 4, "leaf\r\n", false},
		{"depth over the limit is opaque", nested(5), Limits{MaxDepth: 3}, 3, 4,
			crlf("--b3\nContent-Type: multipart/mixed; boundary=b4\n\n--b4\n\nleaf\n"), false},
		{"parts over the limit are not recorded", wide(10), Limits{MaxParts: 5}, 1, 5, "a", true},
		{"parts within the limit", wide(4), Limits{MaxParts: 5}, 1, 5, "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := parseBoth(t, tc.msg, tc.lim)
			if err != nil {
				t.Fatal(err)
			}
			depth, parts, last := treeStats(p)
			if tc.lastIsTop {
				last = p.Parts[len(p.Parts)-1]
			}
			if depth != tc.depth || parts != tc.parts || tc.msg[last.BodyStart:last.End] != tc.lastBody {
				t.Errorf("depth %d parts %d last body %q", depth, parts, tc.msg[last.BodyStart:last.End])
			}
			if p.End != int64(len(tc.msg)) {
				t.Errorf("root ends at %d of %d", p.End, len(tc.msg))
			}
		})
	}
}

// treeStats returns the depth, the number of parts and the deepest part
// (the first one found at that depth).
func treeStats(root *Part) (int, int, *Part) {
	type item struct {
		p *Part
		d int
	}
	stack, depth, n, deepest := []item{{root, 0}}, 0, 0, root
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		if it.d > depth {
			depth, deepest = it.d, it.p
		}
		for i := len(it.p.Parts) - 1; i >= 0; i-- {
			stack = append(stack, item{it.p.Parts[i], it.d + 1})
		}
		if it.p.Message != nil {
			stack = append(stack, item{it.p.Message, it.d + 1})
		}
	}
	return depth, n, deepest
}

func TestParseStructureHeaderTooLarge(t *testing.T) {
	t.Parallel()
	long := "X-Long: " + strings.Repeat("a", 100) + "\r\n"
	for _, tc := range []struct {
		name string
		msg  string
		lim  Limits
		err  error
	}{
		{"default limit", "X: " + strings.Repeat("a", 2<<20) + "\r\n\r\nbody", Limits{}, ErrHeaderTooLarge},
		{"many lines", strings.Repeat(long, 20) + "\r\n", Limits{MaxHeaderBytes: 1000}, ErrHeaderTooLarge},
		{"exactly at the limit", long + "\r\n", Limits{MaxHeaderBytes: int64(len(long) + 2)}, nil},
		{"one octet over", long + "\r\n", Limits{MaxHeaderBytes: int64(len(long) + 1)}, ErrHeaderTooLarge},
		{"nested part", crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\n") + strings.Repeat(long, 20) + "\r\n", Limits{MaxHeaderBytes: 1000}, ErrHeaderTooLarge},
		{"body lines do not count", "\r\n" + strings.Repeat(long, 20), Limits{MaxHeaderBytes: 1000}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := parseBoth(t, tc.msg, tc.lim); !errors.Is(err, tc.err) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
		})
	}
}

func TestParseStructureBombs(t *testing.T) {
	t.Parallel()
	var deep, rfc strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&deep, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		rfc.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	for _, tc := range []struct{ name, msg string }{
		{"1000 nested multiparts", deep.String()},
		{"1000 nested messages", rfc.String()},
		{"50,000 parts", "Content-Type: multipart/mixed; boundary=x\r\n\r\n" + strings.Repeat("--x\r\n\r\na\r\n", 50000)},
		{"50,000 parts in a message", "Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/digest; boundary=x\r\n\r\n" + strings.Repeat("--x\r\n\r\n\r\n", 50000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			p, err := parseStream(strings.NewReader(tc.msg), Limits{})
			if took := time.Since(start); err != nil || took > time.Second {
				t.Fatalf("%v in %v", err, took)
			}
			if err := checkStructure([]byte(tc.msg), p, Limits{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// repeatReader yields one octet forever.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestParseStructureStreams checks that memory does not grow with the
// body, even one made of a single 64 MiB line. Not parallel: it reads the
// process-wide allocation counter.
func TestParseStructureStreams(t *testing.T) {
	const size = 64 << 20
	msg := io.MultiReader(
		strings.NewReader("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n"),
		io.LimitReader(repeatReader('a'), size),
		strings.NewReader("\r\n--x--\r\n"),
	)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := parseStream(msg, Limits{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Parts[0]; c.End-c.BodyStart != size || c.BodyLines != 1 {
		t.Errorf("part %+v", c)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("allocated %d octets for a %d-octet body", alloc, size)
	}
}

// failReader fails after its data.
type failReader struct{ data string }

var errDisk = errors.New("disk on fire")

func (f *failReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, errDisk
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestParseStructureReadError(t *testing.T) {
	t.Parallel()
	_, err := parseStream(&failReader{"Subject: x\r\n\r\nbody"}, Limits{})
	if !errors.Is(err, errDisk) {
		t.Errorf("error %v", err)
	}
}
