package e2e_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"
)

// This file holds what the reliability and fault tests share: a test
// server with submission, IMAP, queue, outbound and DNS settings; a fake
// remote MX written here that can misbehave on purpose; a DNS server that
// can answer SERVFAIL for chosen names; and readers that compare what the
// Maildir holds with what IMAP reports.

// relOpts describe a server for the reliability tests.
type relOpts struct {
	users      []string          // default me@example.test
	smtp       map[string]string // [smtp] keys, raw TOML
	submission bool              // listen for submission (587 style, STARTTLS + AUTH)
	imap       bool              // listen for IMAP (STARTTLS)
	// tables adds whole tables (queue, outbound, dns, ...): table → key →
	// raw TOML value. Not "smtp" or "listen".
	tables  map[string]map[string]string
	noStart bool // leave it stopped after the configuration is written
}

// relServer is a test server with its extra listeners.
type relServer struct {
	*server
	sub, imap int // ports, 0 when off
}

// newRelServer sets up a server as newServer does (started once, which
// creates the store), stops it, adds listeners and tables to its
// configuration and starts it again unless o.noStart.
func newRelServer(t *testing.T, o relOpts) *relServer {
	t.Helper()
	s := newServer(t, opts{users: o.users, smtp: o.smtp})
	s.stop()
	r := &relServer{server: s}
	var listen strings.Builder
	listen.WriteString("[listen]\n")
	if o.submission {
		r.sub = freePort(t)
		fmt.Fprintf(&listen, "submission = [\"127.0.0.1:%d\"]\n", r.sub)
	}
	if o.imap {
		r.imap = freePort(t)
		fmt.Fprintf(&listen, "imap = [\"127.0.0.1:%d\"]\n", r.imap)
	}
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), "[listen]\n", listen.String(), 1)
	var extra strings.Builder
	for _, tbl := range slices.Sorted(maps.Keys(o.tables)) {
		fmt.Fprintf(&extra, "\n[%s]\n", tbl)
		for _, k := range slices.Sorted(maps.Keys(o.tables[tbl])) {
			fmt.Fprintf(&extra, "%s = %s\n", k, o.tables[tbl][k])
		}
	}
	if err := os.WriteFile(s.config, []byte(conf+extra.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	if !o.noStart {
		s.restart()
	}
	return r
}

// outboundTables routes all remote mail to port mxPort of whatever the DNS
// server at dnsAddr names, with fast retries.
func outboundTables(mxPort int, dnsAddr string, minBackoff, maxBackoff string) map[string]map[string]string {
	q := strconv.Quote
	return map[string]map[string]string{
		"queue":    {"min_backoff": q(minBackoff), "max_backoff": q(maxBackoff)},
		"outbound": {"port": strconv.Itoa(mxPort), "connect_timeout": q("3s")},
		"dns":      {"servers": "[" + q(dnsAddr) + "]", "timeout": q("2s")},
	}
}

// inboxDir is the Maildir (INBOX) of me@example.test.
func (s *server) inboxDir() string { return filepath.Join(s.data, "mail", "example.test", "me") }

// logText returns everything the server logged so far, every run.
func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.logs {
		c, _ := os.ReadFile(l)
		b.Write(c)
	}
	return b.String()
}

// queueEmpty reports whether `posthorn queue list` says so, and its output.
func (s *server) queueEmpty() (bool, string) {
	s.t.Helper()
	out := s.admin("", "queue", "list")
	return strings.Contains(out, "Mail queue is empty"), out
}

// waitQueueDrained waits up to d for an empty queue.
func (s *server) waitQueueDrained(d time.Duration) {
	s.t.Helper()
	var last string
	deadline := time.Now().Add(d)
	for {
		var ok bool
		if ok, last = s.queueEmpty(); ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("queue not empty after %v:\n%s", d, last)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// ---- Maildir and IMAP views ----------------------------------------------

// mailFileInfo is one message file of a Maildir.
type mailFileInfo struct {
	sub, name, subject, body string
}

// scanInbox reads every file in new/ and cur/ of a Maildir. A file that is
// not a message is reported with an empty subject and its raw content as
// body.
func scanInbox(t *testing.T, dir string) []mailFileInfo {
	t.Helper()
	var out []mailFileInfo
	for _, sd := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sd))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sd, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			f := mailFileInfo{sub: sd, name: e.Name(), body: string(b)}
			if m, err := mail.ReadMessage(strings.NewReader(string(b))); err == nil {
				body, _ := io.ReadAll(m.Body)
				f.subject, f.body = m.Header.Get("Subject"), string(body)
			}
			out = append(out, f)
		}
	}
	return out
}

// listDir returns the names in dir (none if it does not exist).
func listDir(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// imapView is what an IMAP client sees of INBOX: STATUS, then every
// message's UID and Subject (UID FETCH 1:*), read with Python's imaplib.
type imapView struct {
	Error     string   `json:"error"`
	StatusTyp string   `json:"status_typ"`
	Status    string   `json:"status"`
	SelectTyp string   `json:"select_typ"`
	Exists    int      `json:"exists"`
	Msgs      [][2]any `json:"msgs"` // uid, subject
}

var statusRe = regexp.MustCompile(`(MESSAGES|UIDVALIDITY|UIDNEXT) (\d+)`)

// status returns a number from the STATUS reply (-1 if missing).
func (v imapView) status(item string) int {
	for _, m := range statusRe.FindAllStringSubmatch(v.Status, -1) {
		if m[1] == item {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	return -1
}

// subjects counts the fetched messages by Subject.
func (v imapView) subjects() map[string]int {
	out := map[string]int{}
	for _, m := range v.Msgs {
		s, _ := m[1].(string)
		out[s]++
	}
	return out
}

const pyIMAPView = `
import imaplib, re
cfg = json.loads(sys.argv[1])
out = {"error": "", "msgs": []}
try:
    m = imaplib.IMAP4("127.0.0.1", cfg["port"], timeout=20)
    m.starttls(ssl_context=unverified())
    m.login(cfg["user"], cfg["pw"])
    typ, st = m.status("INBOX", "(MESSAGES UIDVALIDITY UIDNEXT)")
    out["status_typ"], out["status"] = typ, b" ".join(x for x in st if isinstance(x, bytes)).decode()
    typ, data = m.select("INBOX", readonly=True)
    out["select_typ"] = typ
    if typ == "OK":
        out["exists"] = int(data[0])
        if out["exists"] > 0:
            typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for d in data:
                if isinstance(d, tuple):
                    uid = int(re.search(rb"UID (\d+)", d[0]).group(1))
                    h = d[1].decode("utf-8", "replace").strip()
                    out["msgs"].append([uid, h.split(":", 1)[1].strip() if ":" in h else ""])
    m.logout()
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out))
`

// viewIMAP logs in as me@example.test and reads INBOX.
func viewIMAP(t *testing.T, port int) imapView {
	t.Helper()
	arg, _ := json.Marshal(map[string]any{"port": port, "user": "me@example.test", "pw": userPW})
	var v imapView
	pythonJSON(t, nil, 60*time.Second, &v, pyIMAPView, string(arg))
	return v
}

// checkIndexMatchesMaildir compares IMAP's view of INBOX with its files:
// STATUS MESSAGES and the fetched Subjects must equal what new/ and cur/
// hold. It returns the view.
func checkIndexMatchesMaildir(t *testing.T, s *relServer) imapView {
	t.Helper()
	v := viewIMAP(t, s.imap)
	files := scanInbox(t, s.inboxDir())
	onDisk := map[string]int{}
	for _, f := range files {
		onDisk[f.subject]++
	}
	switch {
	case v.Error != "" || v.StatusTyp != "OK" || v.SelectTyp != "OK":
		t.Errorf("IMAP cannot read INBOX: error %q, STATUS %s %q, SELECT %s", v.Error, v.StatusTyp, v.Status, v.SelectTyp)
	case v.status("MESSAGES") != len(files) || v.Exists != len(files):
		t.Errorf("index and Maildir disagree: STATUS MESSAGES %d, SELECT EXISTS %d, files in new/+cur/ %d",
			v.status("MESSAGES"), v.Exists, len(files))
	case !maps.Equal(v.subjects(), onDisk):
		var diff []string
		for subj, n := range onDisk {
			if v.subjects()[subj] != n {
				diff = append(diff, fmt.Sprintf("%q: %d files, %d over IMAP", subj, n, v.subjects()[subj]))
			}
		}
		for subj, n := range v.subjects() {
			if onDisk[subj] == 0 {
				diff = append(diff, fmt.Sprintf("%q: 0 files, %d over IMAP", subj, n))
			}
		}
		slices.Sort(diff)
		t.Errorf("index and Maildir hold different messages: %v", diff)
	}
	return v
}

// ---- SMTP client (Go's net/smtp) -----------------------------------------

// testMessage is a message whose body ends with "end of SUBJECT", so that a
// truncated copy is recognised; pad adds that many bytes of filler lines.
func testMessage(from, to, subject string, pad int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@client.example.net>\r\nDate: %s\r\n\r\n",
		from, to, subject, strings.ReplaceAll(subject, " ", "."), time.Now().Format(time.RFC1123Z))
	for i := 0; b.Len() < pad; i++ {
		fmt.Fprintf(&b, "filler line %05d of %s: the quick brown fox jumps over the lazy dog\r\n", i, subject)
	}
	fmt.Fprintf(&b, "end of %s\r\n", subject)
	return b.String()
}

// smtpCode returns the reply code in an error of net/smtp (0 if none).
func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// smtpDial connects and says EHLO.
func smtpDial(addr string) (*smtp.Client, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Hello("client.example.net"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sendSMTP sends one message over plain SMTP (port 25 style).
func sendSMTP(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.net"); err != nil {
		return err
	}
	return sendOn(c, from, []string{to}, msg)
}

// submitTLS sends one message on a submission port: STARTTLS, AUTH PLAIN as
// me@example.test.
func submitTLS(addr string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.net"); err != nil {
		return err
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		return err
	}
	if err := c.Auth(smtp.PlainAuth("", "me@example.test", userPW, "127.0.0.1")); err != nil {
		return err
	}
	return sendOn(c, "me@example.test", to, msg)
}

func sendOn(c *smtp.Client, from string, to []string, msg string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// ---- DNS -------------------------------------------------------------------

// fakeDNS answers from mockdns zones, except that names set to fail get
// SERVFAIL. UDP and TCP share one port on 127.0.0.1.
type fakeDNS struct {
	mock *mockdns.Server
	addr string

	mu   sync.Mutex
	fail map[string]bool // lower-case FQDN
}

type dnsQuiet struct{}

func (dnsQuiet) Printf(string, ...any) {}

// mxZone makes each domain's MX mx.fault.test, which is 127.0.0.1.
func mxZone(domains ...string) map[string]mockdns.Zone {
	z := map[string]mockdns.Zone{"mx.fault.test.": {A: []string{"127.0.0.1"}}}
	for _, d := range domains {
		z[d+"."] = mockdns.Zone{MX: []net.MX{{Host: "mx.fault.test.", Pref: 10}}}
	}
	return z
}

func newFakeDNS(t *testing.T, zones map[string]mockdns.Zone) *fakeDNS {
	t.Helper()
	mock, err := mockdns.NewServerWithLogger(zones, dnsQuiet{}, false)
	if err != nil {
		t.Fatalf("mock DNS: %v", err)
	}
	d := &fakeDNS{mock: mock, fail: map[string]bool{}}
	var tl net.Listener
	var pc net.PacketConn
	for range 50 {
		if tl, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp4", tl.Addr().String()); err == nil {
			break
		}
		tl.Close()
	}
	if pc == nil {
		t.Fatalf("no port free for DNS on both UDP and TCP: %v", err)
	}
	d.addr = tl.Addr().String()
	h := dns.HandlerFunc(d.serve)
	var started sync.WaitGroup
	started.Add(2)
	tcp := &dns.Server{Listener: tl, Handler: h, NotifyStartedFunc: started.Done}
	udp := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: started.Done}
	go func() { _ = tcp.ActivateAndServe() }()
	go func() { _ = udp.ActivateAndServe() }()
	started.Wait()
	t.Cleanup(func() {
		_ = tcp.Shutdown()
		_ = udp.Shutdown()
		mock.Close()
	})
	return d
}

func (d *fakeDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) == 1 {
		name := strings.ToLower(r.Question[0].Name)
		d.mu.Lock()
		fail := d.fail[name]
		d.mu.Unlock()
		if fail {
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
			return
		}
	}
	d.mock.ServeDNS(w, r)
}

// setFail makes lookups of name (an FQDN) answer SERVFAIL, or not.
func (d *fakeDNS) setFail(name string, fail bool) {
	d.mu.Lock()
	d.fail[strings.ToLower(name)] = fail
	d.mu.Unlock()
}

// ---- Fake remote MX --------------------------------------------------------

// mxRule is how the fake MX treats the recipients of one domain.
type mxRule struct {
	resetData int            // cut the connection (RST) in the middle of DATA in the first n transactions
	tempFail  map[string]int // recipient → 450 to its first n RCPTs
	delay     time.Duration  // before each reply from RCPT on (a slow server)
	stall     bool           // never answer RCPT: a silent server
	dataDelay time.Duration  // before the final 250

	txns     int            // transactions seen (first RCPT)
	rcptSeen map[string]int // RCPTs seen per recipient
}

// mxMail is one message the fake MX accepted with 250.
type mxMail struct {
	rcpts   []string
	subject string
	data    string
	at      time.Time // when the final "." came (the reply follows after dataDelay)
}

// fakeMX is a small SMTP server standing in for remote MX hosts on
// 127.0.0.1 (no PIPELINING, so that every RCPT is answered on its own).
type fakeMX struct {
	t    *testing.T
	ln   net.Listener
	port int

	mu      sync.Mutex
	rules   map[string]*mxRule
	got     []mxMail
	stalled int
	conns   map[net.Conn]bool
	release chan struct{}
	closed  bool
}

func newFakeMX(t *testing.T) *fakeMX {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMX{t: t, ln: ln, port: ln.Addr().(*net.TCPAddr).Port, rules: map[string]*mxRule{},
		conns: map[net.Conn]bool{}, release: make(chan struct{})}
	go m.accept()
	t.Cleanup(m.close)
	return m
}

func (m *fakeMX) close() {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.release)
	}
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.ln.Close()
}

// setRule sets (replaces) the rule of a domain.
func (m *fakeMX) setRule(domain string, r *mxRule) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.rcptSeen == nil {
		r.rcptSeen = map[string]int{}
	}
	m.rules[domain] = r
}

// releaseStalled ends the sessions that stall (they are closed unanswered).
func (m *fakeMX) releaseStalled() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		close(m.release)
		m.release = make(chan struct{})
	}
}

// mails returns the accepted messages with a recipient in domain ("" for
// all).
func (m *fakeMX) mails(domain string) []mxMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mxMail
	for _, g := range m.got {
		if domain == "" || slices.ContainsFunc(g.rcpts, func(r string) bool { return strings.HasSuffix(r, "@"+domain) }) {
			out = append(out, g)
		}
	}
	return out
}

// countRcpt counts accepted copies for one recipient.
func (m *fakeMX) countRcpt(rcpt string) int {
	n := 0
	for _, g := range m.mails("") {
		if slices.Contains(g.rcpts, rcpt) {
			n++
		}
	}
	return n
}

func (m *fakeMX) stalledNow() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stalled
}

func (m *fakeMX) accept() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			return
		}
		m.conns[c] = true
		m.mu.Unlock()
		go func() {
			defer func() {
				m.mu.Lock()
				delete(m.conns, c)
				m.mu.Unlock()
				c.Close()
			}()
			m.serve(c)
		}()
	}
}

func (m *fakeMX) serve(c net.Conn) {
	br := bufio.NewReader(c)
	say := func(lines ...string) bool {
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := io.WriteString(c, strings.Join(lines, "\r\n")+"\r\n")
		return err == nil
	}
	if !say("220 mx.fault.test ESMTP fake") {
		return
	}
	var rcpts []string
	var rule *mxRule
	txn := 0
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			say("250-mx.fault.test", "250-8BITMIME", "250-SMTPUTF8", "250 SIZE 50000000")
		case "HELO":
			say("250 mx.fault.test")
		case "MAIL":
			rcpts, rule, txn = nil, nil, 0
			say("250 2.1.0 ok")
		case "RCPT":
			addr := strings.ToLower(arg)
			if i := strings.IndexByte(addr, '<'); i >= 0 {
				addr = addr[i+1:]
			}
			addr, _, _ = strings.Cut(addr, ">")
			domain := addr[strings.LastIndexByte(addr, '@')+1:]
			m.mu.Lock()
			r := m.rules[domain]
			if r == nil {
				r = &mxRule{rcptSeen: map[string]int{}}
				m.rules[domain] = r
			}
			if rule == nil {
				rule = r
				r.txns++
				txn = r.txns
			}
			r.rcptSeen[addr]++
			seen, fails, delay, stall := r.rcptSeen[addr], r.tempFail[addr], r.delay, r.stall
			release := m.release
			if stall {
				m.stalled++
			}
			m.mu.Unlock()
			if stall {
				m.stall(c, br, release)
				return
			}
			time.Sleep(delay)
			if seen <= fails {
				say("450 4.2.1 " + addr + " is busy, try again later")
				continue
			}
			rcpts = append(rcpts, addr)
			say("250 2.1.5 ok")
		case "DATA":
			if len(rcpts) == 0 {
				say("503 5.5.1 no valid recipients")
				continue
			}
			m.mu.Lock()
			delay, dataDelay, reset := rule.delay, rule.dataDelay, txn <= rule.resetData
			m.mu.Unlock()
			time.Sleep(delay)
			if !say("354 go ahead") {
				return
			}
			data, ok := readDotData(br, reset)
			if reset {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST, not FIN
				}
				return
			}
			if !ok {
				return
			}
			end := time.Now()
			time.Sleep(delay + dataDelay)
			subject := ""
			if msg, err := mail.ReadMessage(strings.NewReader(data)); err == nil {
				subject = msg.Header.Get("Subject")
			}
			m.mu.Lock()
			m.got = append(m.got, mxMail{rcpts: rcpts, subject: subject, data: data, at: end})
			m.mu.Unlock()
			say("250 2.0.0 accepted")
			rcpts, rule = nil, nil
		case "RSET":
			rcpts, rule = nil, nil
			say("250 2.0.0 ok")
		case "NOOP":
			say("250 2.0.0 ok")
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.2 not implemented")
		}
	}
}

// readDotData reads a message up to the line ".", undoing dot-stuffing.
// With cut it stops after a few lines and reports false.
func readDotData(br *bufio.Reader, cut bool) (string, bool) {
	var b strings.Builder
	for n := 0; ; n++ {
		if cut && n == 3 {
			return b.String(), false
		}
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String(), false
		}
		if line == ".\r\n" || line == ".\n" {
			return b.String(), true
		}
		b.WriteString(strings.TrimPrefix(line, "."))
	}
}

// stall keeps a session open without answering until released or until
// the client goes away.
func (m *fakeMX) stall(c net.Conn, br *bufio.Reader, release chan struct{}) {
	gone := make(chan struct{})
	go func() {
		_ = c.SetReadDeadline(time.Time{})
		_, _ = io.Copy(io.Discard, br)
		close(gone)
	}()
	select {
	case <-release:
	case <-gone:
	}
	m.mu.Lock()
	m.stalled--
	m.mu.Unlock()
}

// ---- queue log ---------------------------------------------------------------

// queueEvent is one "deferred" or "delivered" line the queue logged for a
// recipient.
type queueEvent struct {
	at       time.Time
	kind     string // deferred, delivered, bounced
	code     int
	attempts int
	line     string
}

var queueLineRe = regexp.MustCompile(`^time=(\S+) level=\S+ msg=(deferred|delivered|bounced) msgid=\S+ .*?\brcpt=(\S+) code=(\d+)`)
var attemptsRe = regexp.MustCompile(`\battempts=(\d+)`)

// queueEvents returns, in order, what the queue logged for rcpt.
func queueEvents(log, rcpt string) []queueEvent {
	var out []queueEvent
	for _, l := range strings.Split(log, "\n") {
		m := queueLineRe.FindStringSubmatch(l)
		if m == nil || m[3] != rcpt || strings.Contains(l, " cid=") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		e := queueEvent{at: at, kind: m[2], line: l}
		e.code, _ = strconv.Atoi(m[4])
		if a := attemptsRe.FindStringSubmatch(l); a != nil {
			e.attempts, _ = strconv.Atoi(a[1])
		}
		out = append(out, e)
	}
	return out
}
