package e2e_test

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file holds what the attack tests (attack_test.go) share: a server
// with every access listener and /metrics, a raw TCP/TLS client that sends
// exact octets from a chosen loopback source address, readers for SMTP,
// IMAP and POP3 replies, a memory watchdog on the server process, and
// snapshots of the files under a directory.

// atkSlow bounds how long a well-behaved client may take for one whole
// transaction while the server is under attack. The machine running CI is
// small and shared, so this is generous; a server that a slowloris or flood
// really blocks takes until the attacker gives up (far longer).
const atkSlow = 12 * time.Second

// atkOpts describe an attack test server.
type atkOpts struct {
	smtp   map[string]string            // [smtp] keys, raw TOML
	tables map[string]map[string]string // other tables (queue, outbound, dns)
}

// atkServer is a test server that also listens for IMAP, IMAPS, POP3, POP3S
// and HTTP (/metrics).
type atkServer struct {
	*server
	imap, imaps, pop3, pop3s, http int
}

// newAtkServer sets up a server as newServer does, stops it, adds the access
// and http listeners and the extra tables, and starts it again. A port
// taken meanwhile (by another test or a client's ephemeral port) makes it
// pick new ports and try again.
func newAtkServer(t *testing.T, o atkOpts) *atkServer {
	t.Helper()
	s := newServer(t, opts{smtp: o.smtp})
	s.stop()
	a := &atkServer{server: s}
	for attempt := 0; ; attempt++ {
		a.imap, a.imaps, a.pop3, a.pop3s, a.http = freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
		if attempt > 0 {
			s.port = freePort(t)
		}
		a.writeConfig(o)
		err := s.startOnce()
		if err == nil {
			return a
		}
		if !errors.Is(err, errAddrInUse) || attempt >= 20 {
			t.Fatalf("posthorn serve did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeConfig writes newServer's configuration with the extra listeners and
// tables.
func (a *atkServer) writeConfig(o atkOpts) {
	t := a.t
	a.server.writeConfig()
	b, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("[listen]\nimap = [\"127.0.0.1:%d\"]\nimaps = [\"127.0.0.1:%d\"]\npop3 = [\"127.0.0.1:%d\"]\npop3s = [\"127.0.0.1:%d\"]\nhttp = [\"127.0.0.1:%d\"]\n",
		a.imap, a.imaps, a.pop3, a.pop3s, a.http)
	conf := strings.Replace(string(b), "[listen]\n", listen, 1)
	for _, tbl := range slices.Sorted(maps.Keys(o.tables)) {
		conf += fmt.Sprintf("\n[%s]\n", tbl)
		for _, k := range slices.Sorted(maps.Keys(o.tables[tbl])) {
			conf += fmt.Sprintf("%s = %s\n", k, o.tables[tbl][k])
		}
	}
	if err := os.WriteFile(a.config, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
}

func (a *atkServer) addrOf(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// pid is the server's process id (0 when not running).
func (a *atkServer) pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return 0
	}
	return a.proc.cmd.Process.Pid
}

// exited reports whether the current server process has ended (by itself or
// killed by the watchdog).
func (a *atkServer) exited() bool {
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if p == nil {
		return true
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// revive waits for a server process that was killed (or kills it after
// 10 s), forgets it, and starts a new one on the same port and data.
func (a *atkServer) revive() {
	a.t.Helper()
	if a.running() {
		_, _ = a.wait(10 * time.Second)
	}
	a.restart()
}

// checkPanics reads /metrics: every posthorn_panics_total must be 0.
func (a *atkServer) checkPanics(t *testing.T) {
	t.Helper()
	cl := &http.Client{Timeout: 15 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", a.http))
	if err != nil {
		t.Errorf("GET /metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "posthorn_panics_total{") {
			continue
		}
		n++
		if !strings.HasSuffix(l, "} 0") {
			t.Errorf("panics metric not zero: %s", l)
		}
	}
	if n == 0 {
		t.Errorf("no posthorn_panics_total in /metrics:\n%s", b)
	}
}

// ---- memory watchdog -------------------------------------------------------

// atkRSS returns VmRSS of a process in bytes (-1 if unknown).
func atkRSS(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// atkMem watches the server's resident memory. Above hard it kills the
// server (our own child, by its pid) so that a runaway allocation cannot
// take the machine down; the test sees killed and reports it.
type atkMem struct {
	max    atomic.Int64
	killed atomic.Int32
	stop   chan struct{}
	done   chan struct{}
}

func atkWatchMem(a *atkServer, hard int64) *atkMem {
	m := &atkMem{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			pid := a.pid()
			rss := atkRSS(pid)
			if rss > m.max.Load() {
				m.max.Store(rss)
			}
			if rss > hard && !a.exited() {
				m.killed.Add(1)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	return m
}

// end stops the watchdog and returns the largest RSS seen.
func (m *atkMem) end() int64 {
	close(m.stop)
	<-m.done
	return m.max.Load()
}

const mib = 1 << 20

// ---- raw connections -------------------------------------------------------

// atkConn is a client connection that writes exact octets and reads lines.
type atkConn struct {
	c  net.Conn
	br *bufio.Reader
}

// atkDial connects from the loopback address local (e.g. "127.0.0.2") to
// addr.
func atkDial(local, addr string) (*atkConn, error) {
	d := net.Dialer{Timeout: 15 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &atkConn{c: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

// atkDialTLS connects with implicit TLS (IMAPS, POP3S).
func atkDialTLS(local, addr string) (*atkConn, error) {
	c, err := atkDial(local, addr)
	if err != nil {
		return nil, err
	}
	if err := c.startTLS(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// startTLS runs a TLS handshake on the raw connection and reads from TLS
// from then on. Anything buffered in plaintext is dropped, as a careful
// client does.
func (c *atkConn) startTLS() error {
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"})
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.c = tc
	c.br = bufio.NewReaderSize(tc, 64<<10)
	return nil
}

func (c *atkConn) close() { _ = c.c.Close() }

// send writes s in one write call.
func (c *atkConn) send(s string) error {
	_ = c.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := io.WriteString(c.c, s)
	return err
}

// line reads one line (without CRLF) within d.
func (c *atkConn) line(d time.Duration) (string, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	l, err := c.br.ReadString('\n')
	if err != nil {
		if l != "" {
			return l, fmt.Errorf("partial line %q: %w", l, err)
		}
		return "", err
	}
	return strings.TrimRight(l, "\r\n"), nil
}

// silent reports whether nothing arrives within d (and what did).
func (c *atkConn) silent(d time.Duration) (bool, string) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, err := c.br.Read(buf)
	if n > 0 {
		return false, string(buf[:n])
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout(), fmt.Sprint(err)
}

// closedWithin waits up to d for the server to close the connection and
// returns everything it sent meanwhile; ok is false if it stayed open.
func (c *atkConn) closedWithin(d time.Duration) (got string, ok bool) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), false
	}
	return string(b), true
}

// ---- SMTP ------------------------------------------------------------------

// smtpReply is one SMTP reply: its code and lines (without the code).
type smtpReply struct {
	code  int
	lines []string
}

func (r smtpReply) String() string {
	return strconv.Itoa(r.code) + " " + strings.Join(r.lines, " | ")
}

// text is the first line after the code (with the enhanced code).
func (r smtpReply) text() string {
	if len(r.lines) == 0 {
		return ""
	}
	return r.lines[0]
}

// smtpReply reads one (possibly multi-line) reply within d.
func (c *atkConn) smtpReply(d time.Duration) (smtpReply, error) {
	var r smtpReply
	deadline := time.Now().Add(d)
	for {
		l, err := c.line(time.Until(deadline))
		if err != nil {
			return r, err
		}
		if len(l) < 3 {
			return r, fmt.Errorf("malformed reply line %q", l)
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil {
			return r, fmt.Errorf("malformed reply line %q", l)
		}
		r.code = code
		r.lines = append(r.lines, strings.TrimLeft(l[3:], " -"))
		if len(l) == 3 || l[3] == ' ' {
			return r, nil
		}
	}
}

// smtpCmd sends raw octets and reads one reply.
func (c *atkConn) smtpCmd(raw string) (smtpReply, error) {
	if err := c.send(raw); err != nil {
		return smtpReply{}, err
	}
	return c.smtpReply(atkSlow)
}

// atkSMTP connects from local, reads the greeting and says EHLO.
func atkSMTP(local, addr string) (*atkConn, error) {
	c, err := atkDial(local, addr)
	if err != nil {
		return nil, err
	}
	if r, err := c.smtpReply(atkSlow); err != nil || r.code != 220 {
		c.close()
		return nil, fmt.Errorf("greeting %v: %v", r, err)
	}
	if r, err := c.smtpCmd("EHLO client.example.net\r\n"); err != nil || r.code != 250 {
		c.close()
		return nil, fmt.Errorf("EHLO: %v %v", r, err)
	}
	return c, nil
}

// atkSend delivers one message over a fresh SMTP session from local and
// returns the reply to the end of the data.
func atkSend(local, addr, from, to, msg string) (smtpReply, error) {
	c, err := atkSMTP(local, addr)
	if err != nil {
		return smtpReply{}, err
	}
	defer c.close()
	for _, cmd := range []string{"MAIL FROM:<" + from + ">\r\n", "RCPT TO:<" + to + ">\r\n"} {
		if r, err := c.smtpCmd(cmd); err != nil || r.code != 250 {
			return r, fmt.Errorf("%q: %v %v", strings.TrimSpace(cmd), r, err)
		}
	}
	if r, err := c.smtpCmd("DATA\r\n"); err != nil || r.code != 354 {
		return r, fmt.Errorf("DATA: %v %v", r, err)
	}
	if err := c.send(msg + ".\r\n"); err != nil {
		return smtpReply{}, err
	}
	r, err := c.smtpReply(60 * time.Second)
	if err == nil {
		_, _ = c.smtpCmd("QUIT\r\n")
	}
	return r, err
}

// ---- IMAP ------------------------------------------------------------------

var atkLiteralRe = regexp.MustCompile(`\{(\d+)\+?\}$`)

// imapOne reads one IMAP response line within d; a literal in it is read
// into the line.
func (c *atkConn) imapOne(d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	var full strings.Builder
	for {
		l, err := c.line(time.Until(deadline))
		if err != nil {
			return full.String() + l, err
		}
		full.WriteString(l)
		m := atkLiteralRe.FindStringSubmatch(l)
		if m == nil {
			return full.String(), nil
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		_ = c.c.SetReadDeadline(deadline)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			return full.String(), err
		}
		full.Write(buf)
	}
}

// imapUntil reads IMAP responses until the tagged one for tag, or an error
// (a close after BYE, or the end of d). It returns every line and the
// tagged line.
func (c *atkConn) imapUntil(tag string, d time.Duration) (lines []string, tagged string, err error) {
	deadline := time.Now().Add(d)
	for {
		l, err := c.imapOne(time.Until(deadline))
		if l != "" {
			lines = append(lines, l)
		}
		if err != nil {
			return lines, "", err
		}
		if strings.HasPrefix(l, tag+" ") {
			return lines, l, nil
		}
	}
}

// imapCmd sends raw octets and reads up to the tagged response of tag.
func (c *atkConn) imapCmd(tag, raw string, d time.Duration) ([]string, string, error) {
	if err := c.send(raw); err != nil {
		return nil, "", err
	}
	return c.imapUntil(tag, d)
}

// atkIMAP logs in as me@example.test over IMAPS from local.
func atkIMAP(local string, a *atkServer) (*atkConn, error) {
	c, err := atkDialTLS(local, a.addrOf(a.imaps))
	if err != nil {
		return nil, err
	}
	if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "* OK") {
		c.close()
		return nil, fmt.Errorf("IMAP greeting %q: %v", l, err)
	}
	if _, tagged, err := c.imapCmd("L1", "L1 LOGIN me@example.test "+userPW+"\r\n", atkSlow); err != nil || !strings.HasPrefix(tagged, "L1 OK") {
		c.close()
		return nil, fmt.Errorf("IMAP LOGIN: %q %v", tagged, err)
	}
	return c, nil
}

// ---- POP3 ------------------------------------------------------------------

// pop3Cmd sends raw octets and reads one status line.
func (c *atkConn) pop3Cmd(raw string) (string, error) {
	if err := c.send(raw); err != nil {
		return "", err
	}
	return c.line(atkSlow)
}

// pop3Multi reads the lines of a multi-line response up to ".".
func (c *atkConn) pop3Multi() ([]string, error) {
	var out []string
	for {
		l, err := c.line(atkSlow)
		if err != nil {
			return out, err
		}
		if l == "." {
			return out, nil
		}
		out = append(out, l)
	}
}

// atkPOP3 logs in as me@example.test over POP3S from local.
func atkPOP3(local string, a *atkServer) (*atkConn, error) {
	c, err := atkDialTLS(local, a.addrOf(a.pop3s))
	if err != nil {
		return nil, err
	}
	if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "+OK") {
		c.close()
		return nil, fmt.Errorf("POP3 greeting %q: %v", l, err)
	}
	for _, cmd := range []string{"USER me@example.test\r\n", "PASS " + userPW + "\r\n"} {
		if l, err := c.pop3Cmd(cmd); err != nil || !strings.HasPrefix(l, "+OK") {
			c.close()
			return nil, fmt.Errorf("POP3 %s: %q %v", strings.Fields(cmd)[0], l, err)
		}
	}
	return c, nil
}

// ---- files -----------------------------------------------------------------

// atkTree lists every file and directory under root, relative to it.
func atkTree(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed while we walk (tmp files)
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = true
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// atkNewPaths returns the paths in after that are not in before and not
// under one of the allowed prefixes (relative paths, "/"-separated).
func atkNewPaths(before, after map[string]bool, allowed ...string) []string {
	var out []string
	for p := range after {
		if before[p] {
			continue
		}
		ok := false
		for _, a := range allowed {
			if p == a || strings.HasPrefix(p, a+"/") {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// atkMarker is a name unique to this run, used in paths an attack tries to
// create so that they can be searched for afterwards.
func atkMarker(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// atkFindMarker returns the paths under the given roots (not recursive for
// "/", "/etc", "/tmp"; recursive for the others) whose name holds marker.
func atkFindMarker(t *testing.T, marker string, deep []string, shallow []string) []string {
	t.Helper()
	var out []string
	for _, dir := range shallow {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), marker) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, root := range deep {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), marker) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// atkParallel runs the functions at once and waits for all.
func atkParallel(fns ...func()) {
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
}
