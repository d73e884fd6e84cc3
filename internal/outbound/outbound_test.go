package outbound

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/foxcpp/go-mockdns"

	"posthorn/internal/dns"
	"posthorn/internal/queue"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
)

// remote is a peer MTA: our own SMTP server with a recording backend.
type remote struct {
	mu     sync.Mutex
	tls    []bool
	msgs   []string
	reject map[string]*smtp.Error
}

func (r *remote) NewSession(ctx context.Context, c *smtp.ConnInfo) (smtp.Session, error) {
	return &remoteSession{r: r, c: c}, nil
}

type remoteSession struct {
	r *remote
	c *smtp.ConnInfo
}

func (s *remoteSession) Mail(context.Context, smtp.Path, smtp.MailOptions) error { return nil }
func (s *remoteSession) Rcpt(_ context.Context, to smtp.Path, _ smtp.RcptOptions) error {
	if e := s.r.reject[to.Addr.String()]; e != nil {
		return e
	}
	return nil
}
func (s *remoteSession) Data(_ context.Context, rd io.Reader) (string, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return "", err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.msgs = append(s.r.msgs, string(b))
	s.r.tls = append(s.r.tls, s.c.TLS != nil)
	return "R1", nil
}
func (s *remoteSession) Reset() {}
func (s *remoteSession) Close() {}

func selfSigned(t *testing.T) *tls.Config {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.remote.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// senderToRemote runs r as the MX of remote.test (mx.remote.test, on
// 127.0.0.1) and returns a Sender that finds it through DNS.
func senderToRemote(t *testing.T, r *remote) *Sender {
	t.Helper()
	port := startRemote(t, r)
	res := resolver(t, map[string]mockdns.Zone{
		"remote.test.":    {MX: []net.MX{{Host: "mx.remote.test.", Pref: 10}}},
		"mx.remote.test.": {A: []string{"127.0.0.1"}},
	})
	s, err := New(Options{Resolver: res, Hostname: "mx.test", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startRemote runs a peer on 127.0.0.1 and returns its port.
func startRemote(t *testing.T, r *remote) int {
	t.Helper()
	s, err := smtp.New(smtp.Options{Hostname: "mx.remote.test", Backend: r, TLS: selfSigned(t), DSN: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return l.Addr().(*net.TCPAddr).Port
}

func resolver(t *testing.T, zones map[string]mockdns.Zone) dns.Resolver {
	t.Helper()
	srv, err := mockdns.NewServerWithLogger(zones, quiet{}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := dns.New([]string{srv.LocalAddr().String()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func envelope(domain string, rcpts ...string) queue.Envelope {
	e := queue.Envelope{ID: "T1", From: "a@mx.test", Domain: domain}
	for _, r := range rcpts {
		e.Rcpts = append(e.Rcpts, store.QueuedRcpt{Addr: r})
	}
	return e
}

const body = "Subject: out\r\n\r\nhello\r\n"

func deliver(t *testing.T, s *Sender, env queue.Envelope) []queue.Result {
	t.Helper()
	return s.Deliver(context.Background(), env, strings.NewReader(body), int64(len(body)))
}

func TestDeliverOverSTARTTLSWithPerRecipientResults(t *testing.T) {
	t.Parallel()
	r := &remote{reject: map[string]*smtp.Error{
		"bad@remote.test":  {Code: 550, Enhanced: "5.1.1", Msg: "No such user"},
		"busy@remote.test": {Code: 450, Enhanced: "4.2.1", Msg: "Try later"},
	}}
	s := senderToRemote(t, r)
	out := deliver(t, s, envelope("remote.test", "ok@remote.test", "bad@remote.test", "busy@remote.test"))
	if out[0].Code != 250 || out[1].Code != 550 || out[1].Enhanced != "5.1.1" || out[2].Code != 450 || out[0].Remote != "mx.remote.test" {
		t.Fatalf("results %+v", out)
	}
	if len(r.msgs) != 1 || r.msgs[0] != body || !r.tls[0] {
		t.Errorf("remote got %q (tls %v)", r.msgs, r.tls)
	}
}

func TestFallsBackToSecondMXAndARecord(t *testing.T) {
	t.Parallel()
	r := &remote{}
	port := startRemote(t, r)
	// The first MX resolves to an address where nothing listens.
	res := resolver(t, map[string]mockdns.Zone{
		"remote.test.":      {MX: []net.MX{{Host: "dead.remote.test.", Pref: 5}, {Host: "mx.remote.test.", Pref: 10}}},
		"dead.remote.test.": {A: []string{"127.0.0.3"}},
		"mx.remote.test.":   {A: []string{"127.0.0.1"}},
		"nomx.test.":        {A: []string{"127.0.0.1"}},
	})
	s, _ := New(Options{Resolver: res, Hostname: "mx.test", Port: port, ConnectTimeout: time.Second})
	if out := deliver(t, s, envelope("remote.test", "a@remote.test")); out[0].Code != 250 {
		t.Fatalf("second MX: %+v", out)
	}
	if out := deliver(t, s, envelope("nomx.test", "a@nomx.test")); out[0].Code != 250 {
		t.Fatalf("implicit MX: %+v", out)
	}
}

func TestRoutingFailures(t *testing.T) {
	t.Parallel()
	res := resolver(t, map[string]mockdns.Zone{
		"null.test.":   {MX: []net.MX{{Host: ".", Pref: 0}}},
		"broken.test.": {Err: errors.New("servfail")},
		"loop.test.":   {MX: []net.MX{{Host: "mx.test.", Pref: 10}}},
		"down.test.":   {A: []string{"127.0.0.3"}},
	})
	s, _ := New(Options{Resolver: res, Hostname: "mx.test", Port: 1, ConnectTimeout: time.Second})
	for _, tc := range []struct {
		domain   string
		code     int
		enhanced string
	}{
		{"null.test", 556, "5.1.10"},
		{"missing.test", 550, "5.1.2"},
		{"broken.test", 451, "4.4.3"},
		{"loop.test", 554, "5.4.6"},
		{"down.test", 451, "4.4.1"},
	} {
		out := deliver(t, s, envelope(tc.domain, "x@"+tc.domain, "y@"+tc.domain))
		for _, r := range out {
			if r.Code != tc.code || r.Enhanced != tc.enhanced {
				t.Errorf("%s: %+v, want %d %s", tc.domain, r, tc.code, tc.enhanced)
			}
		}
	}
}

func TestRelayHost(t *testing.T) {
	t.Parallel()
	r := &remote{}
	port := startRemote(t, r)
	s, _ := New(Options{Hostname: "mx.test", RelayHost: "127.0.0.1:" + strconv.Itoa(port)})
	if out := deliver(t, s, envelope("anywhere.test", "a@anywhere.test")); out[0].Code != 250 {
		t.Fatalf("relay host: %+v", out)
	}
}

// TestResultsMailNot250: a MAIL reply other than 250 is no success, even
// when positive (a 252 made the client end the message empty and the
// queue count every recipient delivered); 4xx and 5xx pass through.
func TestResultsMailNot250(t *testing.T) {
	t.Parallel()
	env := envelope("remote.test", "a", "b")
	ok := smtp.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"ok"}}
	for _, tc := range []struct {
		mail int
		want int
	}{{252, 451}, {354, 451}, {250, 250}, {421, 421}, {550, 550}} {
		res := smtp.SendResult{Mail: smtp.Reply{Code: tc.mail, Lines: []string{"maybe"}}, Rcpts: []smtp.Reply{ok, ok}, Data: ok}
		for _, r := range results(env, "mx.remote.test", res, false) {
			if r.Code != tc.want {
				t.Errorf("MAIL answered %d: recipient result %d (%s), want %d", tc.mail, r.Code, r.Text, tc.want)
			}
		}
	}
}

// countingResolver counts the address lookups an attempt makes.
type countingResolver struct {
	dns.Resolver
	mu      sync.Mutex
	lookups int
}

func (c *countingResolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	c.mu.Lock()
	c.lookups++
	c.mu.Unlock()
	return c.Resolver.LookupIP(ctx, host)
}

// TestAttemptBounded: a domain with 12 MX hosts gets at most maxAddrs
// connection attempts, each after its address lookup, per delivery
// attempt (1,500 MX hosts made 1,500 lookups and connections to
// addresses of the domain's choosing).
func TestAttemptBounded(t *testing.T) {
	t.Parallel()
	zones := map[string]mockdns.Zone{}
	var mxs []net.MX
	for i := range 12 { // what one UDP answer of the mock server holds
		name := fmt.Sprintf("mx%d.many.test.", i)
		mxs = append(mxs, net.MX{Host: name, Pref: uint16(i)})
		zones[name] = mockdns.Zone{A: []string{"127.0.0.3"}}
	}
	zones["many.test."] = mockdns.Zone{MX: mxs}
	res := &countingResolver{Resolver: resolver(t, zones)}
	s, _ := New(Options{Resolver: res, Hostname: "mx.test", Port: 1, ConnectTimeout: time.Second})
	out := deliver(t, s, envelope("many.test", "x@many.test"))
	if out[0].Code != 451 || out[0].Enhanced != "4.4.1" {
		t.Errorf("result %+v, want 451 4.4.1 (no server reached)", out[0])
	}
	if res.lookups == 0 || res.lookups > maxAddrs {
		t.Errorf("%d address lookups for one attempt, want 1 to %d", res.lookups, maxAddrs)
	}
}

// startNamed runs a peer that calls itself name, on addr ("ip:port").
func startNamed(t *testing.T, r *remote, name, addr string) int {
	t.Helper()
	s, err := smtp.New(smtp.Options{Hostname: name, Backend: r, TLS: selfSigned(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return l.Addr().(*net.TCPAddr).Port
}

// TestLoopBackToMyself: a server that greets us with our own hostname is
// this server reached again (an MX or a relay_host pointing back here);
// sending would loop until the hop count ends it. When every server
// tried is one, the message bounces at once with 5.4.6, as in Postfix;
// when another MX is a real one, it gets the message.
func TestLoopBackToMyself(t *testing.T) {
	t.Parallel()
	self := &remote{}
	selfPort := startNamed(t, self, "MX.test.", "127.0.0.1:0")
	s, _ := New(Options{Hostname: "mx.test", RelayHost: "127.0.0.1:" + strconv.Itoa(selfPort)})
	for _, r := range deliver(t, s, envelope("anywhere.test", "a@anywhere.test", "b@anywhere.test")) {
		if r.Code != 554 || r.Enhanced != "5.4.6" || !strings.Contains(r.Text, "loops back to myself") {
			t.Errorf("relay_host that is us: %+v, want 554 5.4.6", r)
		}
	}
	if len(self.msgs) != 0 {
		t.Errorf("the looping server got %d messages", len(self.msgs))
	}

	// The better MX is us (by address, under another name); the second
	// is a real peer on the same port of another address.
	real := &remote{}
	port := startNamed(t, real, "mx.remote.test", "127.0.0.1:0")
	startNamed(t, self, "mx.test", "127.0.0.2:"+strconv.Itoa(port))
	res := resolver(t, map[string]mockdns.Zone{
		"remote.test.":       {MX: []net.MX{{Host: "alias.remote.test.", Pref: 5}, {Host: "mx.remote.test.", Pref: 10}}},
		"alias.remote.test.": {A: []string{"127.0.0.2"}},
		"mx.remote.test.":    {A: []string{"127.0.0.1"}},
		"only.test.":         {MX: []net.MX{{Host: "alias.remote.test.", Pref: 5}}},
	})
	s, _ = New(Options{Resolver: res, Hostname: "mx.test", Port: port, ConnectTimeout: time.Second})
	if out := deliver(t, s, envelope("remote.test", "a@remote.test")); out[0].Code != 250 || len(real.msgs) != 1 {
		t.Errorf("second MX after a looping first: %+v, real peer got %d", out, len(real.msgs))
	}
	if out := deliver(t, s, envelope("only.test", "a@only.test")); out[0].Code != 554 || out[0].Enhanced != "5.4.6" {
		t.Errorf("only MX is us: %+v, want 554 5.4.6", out)
	}
	if len(self.msgs) != 0 {
		t.Errorf("the looping server got %d messages", len(self.msgs))
	}
}

// TestLoopNamedInEHLO: a server may greet with another name (a proxy, a
// load balancer) and still be us: the name in its EHLO reply counts too.
func TestLoopNamedInEHLO(t *testing.T) {
	t.Parallel()
	addr := scriptedMX(t, mxScript{greeting: "balancer.example", ehlo: "mx.test", dotReply: "250 ok"})
	s, _ := New(Options{Hostname: "mx.test", RelayHost: addr, CommandTimeout: 5 * time.Second})
	if out := deliver(t, s, envelope("anywhere.test", "a@anywhere.test")); out[0].Code != 554 || out[0].Enhanced != "5.4.6" {
		t.Errorf("EHLO names us: %+v, want 554 5.4.6", out)
	}
}

// TestResultsBeforeQUIT: the results are returned once DATA is answered,
// without waiting for the reply to QUIT: a server that never answered
// QUIT held them for the command timeout, and a crash in that window sent
// the message again.
func TestResultsBeforeQUIT(t *testing.T) {
	t.Parallel()
	addr := scriptedMX(t, mxScript{dotReply: "250 2.0.0 queued", quitHangs: true})
	s, _ := New(Options{Hostname: "mx.test", RelayHost: addr, CommandTimeout: 30 * time.Second})
	t0 := time.Now()
	out := deliver(t, s, envelope("anywhere.test", "a@anywhere.test"))
	if out[0].Code != 250 {
		t.Fatalf("results %+v", out)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("the results came after %v: held for the QUIT reply", d)
	}
}

// TestReplyTextBounded: a remote's reply text is kept cut to 512 octets
// (a UTF-8 character whole): 100 lines of 2 KiB for each of 500
// recipients could make about 100 MB of queue rows.
func TestReplyTextBounded(t *testing.T) {
	t.Parallel()
	lines := make([]string, 100)
	for i := range lines {
		lines[i] = strings.Repeat("é", 1000)
	}
	got := replyText(smtp.Reply{Code: 450, Enhanced: "4.2.0", Lines: lines})
	if len(got) > maxReplyText+10 || !utf8.ValidString(got) || !strings.HasSuffix(got, "[...]") {
		t.Errorf("reply text of %d octets (valid UTF-8 %v): %.40q…", len(got), utf8.ValidString(got), got)
	}
	if short := replyText(smtp.Reply{Code: 450, Lines: []string{"try later"}}); short != "try later" {
		t.Errorf("a short reply changed: %q", short)
	}
}

// TestStopCutsSilentGreeting: when the daemon stops (ctx ends), an
// attempt still waiting for a greeting ends at once; it waited for the
// command timeout.
func TestStopCutsSilentGreeting(t *testing.T) {
	t.Parallel()
	addr := listenScripted(t, func(nc net.Conn) { time.Sleep(time.Minute); nc.Close() }) // says nothing
	s, _ := New(Options{Hostname: "mx.test", RelayHost: addr, CommandTimeout: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	out := s.Deliver(ctx, envelope("anywhere.test", "a@anywhere.test"), strings.NewReader(body), int64(len(body)))
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Deliver returned %v after the stop", d)
	}
	if out[0].Code/100 != 4 {
		t.Errorf("result %+v, want a temporary failure (retried later)", out[0])
	}
}

// TestLostAfterDataSaysSo: a connection lost after the end of the data is
// no "server could not be reached": the server may have the message, and
// the report says it may arrive more than once, as Postfix's does.
func TestLostAfterDataSaysSo(t *testing.T) {
	t.Parallel()
	addr := scriptedMX(t, mxScript{}) // the connection drops before the reply
	s, _ := New(Options{Hostname: "mx.test", RelayHost: addr, CommandTimeout: 5 * time.Second})
	out := deliver(t, s, envelope("anywhere.test", "a@anywhere.test"))
	if out[0].Code != 451 || out[0].Enhanced != "4.4.2" || !strings.Contains(out[0].Text, "more than once") {
		t.Errorf("result %+v, want 451 4.4.2 saying it may arrive more than once", out[0])
	}
}

// mxScript is what scriptedMX answers: its name in the greeting and to
// EHLO (mx.remote.test by default, and no extension), dotReply to the end
// of the data ("" drops the connection instead), and no reply to QUIT
// when quitHangs. Each message's data, its lines as they came, goes to
// onData if set.
type mxScript struct {
	greeting, ehlo, dotReply string
	quitHangs                bool
	onData                   func(string)
}

// scriptedMX runs a minimal MX on 127.0.0.1 and returns its address.
func scriptedMX(t *testing.T, sc mxScript) string {
	t.Helper()
	return listenScripted(t, func(nc net.Conn) { serveScripted(nc, sc) })
}

// listenScripted listens on 127.0.0.1, runs serve for each connection and
// returns the address.
func listenScripted(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go serve(nc)
		}
	}()
	return l.Addr().String()
}

func serveScripted(nc net.Conn, sc mxScript) {
	defer nc.Close()
	greeting, ehlo := cmp.Or(sc.greeting, "mx.remote.test"), cmp.Or(sc.ehlo, "mx.remote.test")
	io.WriteString(nc, "220 "+greeting+" ESMTP\r\n")
	br := bufio.NewReader(nc)
	inData := false
	var data strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case inData && cmd == ".":
			if sc.onData != nil {
				sc.onData(data.String())
			}
			if sc.dotReply == "" {
				return
			}
			inData = false
			io.WriteString(nc, sc.dotReply+"\r\n")
		case inData:
			data.WriteString(line)
		case strings.HasPrefix(cmd, "EHLO"):
			io.WriteString(nc, "250 "+ehlo+"\r\n")
		case cmd == "DATA":
			inData = true
			io.WriteString(nc, "354 go on\r\n")
		case cmd == "QUIT" && sc.quitHangs:
			time.Sleep(time.Minute)
			return
		case cmd == "QUIT":
			io.WriteString(nc, "221 bye\r\n")
			return
		default:
			io.WriteString(nc, "250 ok\r\n")
		}
	}
}

// TestLoopNamedAfterSTARTTLS: the EHLO reply inside TLS is checked for
// our own name too (a front that names the real server only then).
func TestLoopNamedAfterSTARTTLS(t *testing.T) {
	t.Parallel()
	cfg := selfSigned(t)
	addr := listenScripted(t, func(nc net.Conn) {
		defer nc.Close()
		var conn net.Conn = nc
		io.WriteString(conn, "220 front.example ESMTP\r\n")
		br := bufio.NewReader(conn)
		name := "front.example"
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO"):
				io.WriteString(conn, "250-"+name+"\r\n250 STARTTLS\r\n")
			case cmd == "STARTTLS":
				io.WriteString(conn, "220 2.0.0 go ahead\r\n")
				tc := tls.Server(nc, cfg)
				if tc.Handshake() != nil {
					return
				}
				conn, br, name = tc, bufio.NewReader(tc), "mx.test"
			case cmd == "QUIT":
				io.WriteString(conn, "221 bye\r\n")
				return
			default:
				io.WriteString(conn, "250 ok\r\n") // a loop would go on
			}
		}
	})
	s, _ := New(Options{Hostname: "mx.test", RelayHost: addr, CommandTimeout: 5 * time.Second})
	if out := deliver(t, s, envelope("anywhere.test", "a@anywhere.test")); out[0].Code != 554 || out[0].Enhanced != "5.4.6" {
		t.Errorf("EHLO inside TLS names us: %+v, want 554 5.4.6", out)
	}
}

// TestLongLinesBroken: a message taken with lines over RFC 5321's 1000
// octets (the SMTP server's max_line_length may allow them, as Postfix
// takes any) reaches a server that holds to the limit, with those lines
// broken as Postfix's smtp_line_length_limit breaks them; lines within
// the limit, the header fields' text and the body's text are unchanged.
func TestLongLinesBroken(t *testing.T) {
	t.Parallel()
	r := &remote{} // our SMTP server: 998 octets a line by default
	s := senderToRemote(t, r)
	subject := "Subject:" + strings.Repeat(" long", 400)
	html := "<p>" + strings.Repeat("minified html ", 700) + "</p>"
	long := subject + "\r\nTo: x@remote.test\r\n\r\n" + html + "\r\nshort line\r\n"
	out := s.Deliver(context.Background(), envelope("remote.test", "x@remote.test"), strings.NewReader(long), int64(len(long)))
	if out[0].Code != 250 {
		t.Fatalf("result %+v", out[0])
	}
	if len(r.msgs) != 1 {
		t.Fatalf("remote got %d messages", len(r.msgs))
	}
	hdr, text, _ := strings.Cut(r.msgs[0], "\r\n\r\n")
	if strings.ReplaceAll(hdr, "\r\n ", " ") != subject+"\r\nTo: x@remote.test" {
		t.Errorf("header does not unfold to the original: %.100q…", hdr)
	}
	// The body's pieces may start with a space of their own, so only
	// the text between white space is compared.
	if strings.Join(strings.Fields(text), "") != strings.Join(strings.Fields(html+" short line"), "") || !strings.HasSuffix(text, "\r\nshort line\r\n") {
		t.Errorf("body text changed: %.100q…", text)
	}
	if got := scanBody(strings.NewReader(long), int64(len(long))); got.longest != len(html) || got.eightBit {
		t.Errorf("scanBody = %+v, want longest %d", got, len(html))
	}
}

// TestEightBitDowngraded: a server without 8BITMIME gets no 8-bit octet
// in a body (RFC 6152 §3): the 8-bit text is sent quoted-printable, as
// Postfix converts it, and no BODY=8BITMIME is declared.
func TestEightBitDowngraded(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	addr := scriptedMX(t, mxScript{dotReply: "250 ok", onData: func(d string) { got <- d }})
	s, _ := New(Options{Hostname: "mx.test", RelayHost: addr, CommandTimeout: 5 * time.Second})
	msg := "From: a@mx.test\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n"
	out := s.Deliver(context.Background(), envelope("anywhere.test", "x@anywhere.test"), strings.NewReader(msg), int64(len(msg)))
	if out[0].Code != 250 {
		t.Fatalf("result %+v", out[0])
	}
	data := <-got
	want := "From: a@mx.test\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
	if data != want {
		t.Errorf("sent\n%q\nwant\n%q", data, want)
	}
}
