package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
)

// This file holds what the interop tests of submission, the queue and MX
// delivery share: a mock DNS, posthorn instances that each serve one
// domain on a loopback address of their own, and a Postfix peer.
//
// Two MTAs of one test listen on the same port (the [outbound] port every
// instance uses for remote MX hosts) on different loopback addresses:
// Linux routes all of 127.0.0.0/8 to lo.

// Loopback addresses of the peers. Tests that run in parallel use the same
// addresses on different ports.
const (
	ipA       = "127.0.0.2" // posthorn for a.test
	ipB       = "127.0.0.3" // posthorn for b.test
	ipPostfix = "127.0.0.4" // Postfix for p.test
)

// pw is the password newMTA gives each account.
func pw(addr string) string { return "pw-" + addr }

// mockDNS serves zones on 127.0.0.1 (UDP and TCP, one port) until the
// test ends and returns its address.
func mockDNS(t *testing.T, zones map[string]mockdns.Zone) string {
	t.Helper()
	srv, err := mockdns.NewServerWithLogger(zones, quietLog{}, false)
	if err != nil {
		t.Fatalf("mock DNS: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.LocalAddr().String()
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

// mxZones returns, for each domain → IP, an MX record mx.DOMAIN and its A
// record.
func mxZones(domains map[string]string) map[string]mockdns.Zone {
	z := map[string]mockdns.Zone{}
	for d, ip := range domains {
		z[d+"."] = mockdns.Zone{MX: []net.MX{{Host: "mx." + d + ".", Pref: 10}}}
		z["mx."+d+"."] = mockdns.Zone{A: []string{ip}}
	}
	return z
}

// sharedPort returns a TCP port that was free a moment ago on every one of
// ips and that no other call (here or freePort) has returned, as freePort
// does: one instance got the same port for SMTP and submission.
func sharedPort(t *testing.T, ips ...string) int {
	t.Helper()
	for range 100 {
		l0, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("listen on %s: %v (is 127.0.0.0/8 routed to lo?)", ips[0], err)
		}
		port := l0.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l0}
		ok := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if _, dup := handedPorts.LoadOrStore(port, true); ok && !dup {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return 0
}

// freePortOn returns a TCP port that was free a moment ago on ip.
func freePortOn(t *testing.T, ip string) int {
	t.Helper()
	return sharedPort(t, ip)
}

// mtaOpts describe one posthorn instance.
type mtaOpts struct {
	domain string   // its one domain; its hostname is mx.DOMAIN
	ip     string   // where it listens
	port   int      // its SMTP (MX) port, which is also the [outbound] port
	dns    string   // resolver, host:port
	users  []string // local parts of its accounts (password: pw(address))
	// config overrides or adds keys: table → key → raw TOML value.
	config  map[string]map[string]string
	noStart bool // set up only; the test calls start
}

// mta is a `posthorn serve` process for one domain.
type mta struct {
	t        *testing.T
	o        mtaOpts
	domain   string
	hostname string
	ip       string
	dir      string // posthorn.toml, tls/, data/, logs
	config   string
	data     string
	sub      int // submission (STARTTLS) port
	subs     int // submissions (implicit TLS) port

	mu   sync.Mutex
	proc *process
	logs []string
}

// newMTA sets up an instance, creates its domain and accounts and, unless
// o.noStart, starts it. It is stopped when the test ends.
func newMTA(t *testing.T, o mtaOpts) *mta {
	t.Helper()
	dir := t.TempDir()
	m := &mta{t: t, o: o, domain: o.domain, hostname: "mx." + o.domain, ip: o.ip, dir: dir,
		config: filepath.Join(dir, "posthorn.toml"), data: filepath.Join(dir, "data")}
	t.Cleanup(m.cleanup)
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		b, err := os.ReadFile(filepath.Join(certDir, "tls", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tls", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m.sub, m.subs = freePortOn(t, o.ip), freePortOn(t, o.ip)
	m.writeConfig()
	m.admin("", "domain", "add", o.domain)
	for _, u := range o.users {
		addr := u + "@" + o.domain
		m.admin(pw(addr)+"\n", "user", "add", addr, "--password-stdin")
	}
	if !o.noStart {
		m.start()
	}
	return m
}

func (m *mta) smtpAddr() string { return net.JoinHostPort(m.ip, strconv.Itoa(m.o.port)) }
func (m *mta) subAddr() string  { return net.JoinHostPort(m.ip, strconv.Itoa(m.sub)) }
func (m *mta) subsAddr() string { return net.JoinHostPort(m.ip, strconv.Itoa(m.subs)) }
func (m *mta) cert() string     { return filepath.Join(m.dir, "tls", "cert.pem") }

func (m *mta) writeConfig() {
	q := func(s string) string { return strconv.Quote(s) }
	tables := map[string]map[string]string{
		"log":    {"level": q("info")},
		"listen": {"smtp": "[" + q(m.smtpAddr()) + "]", "submission": "[" + q(m.subAddr()) + "]", "submissions": "[" + q(m.subsAddr()) + "]"},
		"tls":    {"cert_file": q("tls/cert.pem"), "key_file": q("tls/key.pem")},
		"smtp":   {"shutdown_timeout": q(shutdownTimeout.String())},
		// Retries come quickly unless a test wants to see mail wait.
		"queue":    {"min_backoff": q("2s"), "max_backoff": q("4s")},
		"outbound": {"port": strconv.Itoa(m.o.port), "connect_timeout": q("5s")},
		"dns":      {"servers": "[" + q(m.o.dns) + "]", "timeout": q("2s")},
	}
	for tbl, keys := range m.o.config {
		if tables[tbl] == nil {
			tables[tbl] = map[string]string{}
		}
		for k, v := range keys {
			tables[tbl][k] = v
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = %s\ndata_dir = \"data\"\n", q(m.hostname))
	for _, tbl := range slices.Sorted(maps.Keys(tables)) {
		fmt.Fprintf(&b, "\n[%s]\n", tbl)
		for _, k := range slices.Sorted(maps.Keys(tables[tbl])) {
			fmt.Fprintf(&b, "%s = %s\n", k, tables[tbl][k])
		}
	}
	if err := os.WriteFile(m.config, []byte(b.String()), 0o640); err != nil {
		m.t.Fatal(err)
	}
}

// admin runs `posthorn --config F args...` and fails the test on error.
func (m *mta) admin(stdin string, args ...string) string {
	m.t.Helper()
	r := run(m.t, 30*time.Second, stdin, nil, binary, append([]string{"--config", m.config}, args...)...)
	if r.err != nil {
		m.t.Fatalf("posthorn %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// start runs `posthorn serve` and waits until its three SMTP listeners
// are up. Submission ports taken meanwhile by someone else are replaced.
func (m *mta) start() {
	m.t.Helper()
	for attempt := 0; ; attempt++ {
		err := m.startOnce()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || attempt >= 10 {
			m.t.Fatalf("posthorn serve (%s) did not start: %v", m.domain, err)
		}
		m.sub, m.subs = freePortOn(m.t, m.ip), freePortOn(m.t, m.ip)
		m.writeConfig()
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *mta) startOnce() error {
	m.mu.Lock()
	log := filepath.Join(m.dir, fmt.Sprintf("serve-%d.log", len(m.logs)+1))
	m.logs = append(m.logs, log)
	m.mu.Unlock()
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(binary, "--config", m.config, "serve")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	want := []string{
		"msg=listening service=smtp addr=" + m.smtpAddr(),
		"msg=listening service=submission addr=" + m.subAddr(),
		"msg=listening service=submissions addr=" + m.subsAddr(),
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		select {
		case <-p.exited:
			if strings.Contains(string(b), "address already in use") {
				return fmt.Errorf("%w: %s", errAddrInUse, b)
			}
			return fmt.Errorf("exited (%v) before listening:\n%s", p.err, b)
		default:
		}
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(string(b), w) }) {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("not listening after 15s:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	return nil
}

// stop sends SIGTERM to the server's PID and waits for a clean exit.
func (m *mta) stop() {
	m.t.Helper()
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p == nil {
		return
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		m.t.Errorf("kill -TERM %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			m.t.Errorf("posthorn (%s) exited with %v after SIGTERM", m.domain, p.err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		m.t.Errorf("posthorn (%s) still running %v after SIGTERM (killed)", m.domain, shutdownTimeout+5*time.Second)
	}
}

func (m *mta) cleanup() {
	m.stop()
	for _, l := range m.logs {
		b, _ := os.ReadFile(l)
		if strings.Contains(strings.ToLower(string(b)), "panic") {
			m.t.Errorf("%s: server log %s mentions a panic:\n%s", m.domain, filepath.Base(l), tail(b, 8000))
		} else if m.t.Failed() {
			m.t.Logf("%s: server log %s:\n%s", m.domain, filepath.Base(l), tail(b, 6000))
		}
	}
}

// log returns everything the server logged so far.
func (m *mta) log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, l := range m.logs {
		c, _ := os.ReadFile(l)
		b.Write(c)
	}
	return b.String()
}

// mailFile is one message file in a Maildir.
type mailFile struct {
	path   string
	raw    string
	header mail.Header
	body   string
}

func (f mailFile) subject() string { return f.header.Get("Subject") }

// readMaildir reads every message in new/ and cur/ of a Maildir.
func readMaildir(t *testing.T, dir string) []mailFile {
	t.Helper()
	var out []mailFile
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, sub, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f := mailFile{path: p, raw: string(b)}
			msg, err := mail.ReadMessage(strings.NewReader(string(b)))
			if err != nil {
				t.Errorf("%s: not a message: %v\n%s", p, err, b)
				continue
			}
			f.header = msg.Header
			body, _ := io.ReadAll(msg.Body)
			f.body = string(body)
			out = append(out, f)
		}
	}
	return out
}

// maildir is the INBOX of the account local@domain.
func (m *mta) maildir(local string) string { return filepath.Join(m.data, "mail", m.domain, local) }

// inbox reads an account's INBOX.
func (m *mta) inbox(local string) []mailFile { return readMaildir(m.t, m.maildir(local)) }

// allMail reads the INBOX of every account of the instance, by address.
func (m *mta) allMail() map[string][]mailFile {
	out := map[string][]mailFile{}
	ents, _ := os.ReadDir(filepath.Join(m.data, "mail", m.domain))
	for _, e := range ents {
		if e.IsDir() {
			out[e.Name()+"@"+m.domain] = m.inbox(e.Name())
		}
	}
	return out
}

// waitMaildir waits up to d until dir holds a message whose Subject is
// subject and returns it.
func waitMaildir(t *testing.T, dir, subject string, d time.Duration) mailFile {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var subjects []string
		for _, f := range readMaildir(t, dir) {
			if f.subject() == subject {
				return f
			}
			subjects = append(subjects, f.subject())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message with Subject %q in %s after %v; subjects there: %q", subject, dir, d, subjects)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poll polls cond every 50ms for up to d and reports whether it held.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueList is `posthorn queue list`.
func (m *mta) queueList() string {
	m.t.Helper()
	return m.admin("", "queue", "list")
}

// waitQueueEmpty waits until the queue is empty.
func (m *mta) waitQueueEmpty(d time.Duration) {
	m.t.Helper()
	var last string
	if !poll(d, func() bool { last = m.queueList(); return strings.Contains(last, "Mail queue is empty") }) {
		m.t.Fatalf("%s: queue not empty after %v:\n%s", m.domain, d, last)
	}
}

// dsnReport is what a delivery status notification says, read with the
// standard library's MIME parser.
type dsnReport struct {
	reportType string
	human      string
	status     string // the message/delivery-status part
	original   string // the returned message or its header
}

// parseDSN checks that f is a multipart/report (RFC 6522) and returns its
// parts.
func parseDSN(t *testing.T, f mailFile) dsnReport {
	t.Helper()
	mt, params, err := mime.ParseMediaType(f.header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" {
		t.Fatalf("DSN Content-Type = %q (%v), want multipart/report\n%s", f.header.Get("Content-Type"), err, f.raw)
	}
	r := dsnReport{reportType: params["report-type"]}
	mr := multipart.NewReader(strings.NewReader(f.body), params["boundary"])
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("DSN MIME structure: %v\n%s", err, f.raw)
			}
			break
		}
		b, _ := io.ReadAll(p)
		body := string(b)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch {
		case i == 0:
			r.human = body
		case ct == "message/delivery-status" || ct == "message/global-delivery-status":
			r.status = body
		case ct == "message/rfc822" || ct == "text/rfc822-headers" || ct == "message/global" || ct == "message/global-headers":
			r.original = body
		}
	}
	return r
}

// postfixPeer is a Postfix instance of the test's own: configuration,
// queue and mail under a temporary directory, listening on one loopback
// address.
type postfixPeer struct {
	t      *testing.T
	dir    string
	conf   string // config_directory
	queue  string // queue_directory
	mail   string // virtual_mailbox_base
	domain string
	addr   string // SMTP listener
	pid    int    // of master(8)
}

// newPostfix starts Postfix for domain on ip:port with one virtual
// mailbox (Maildir) per user, and sends mail for each domain of transport
// to the given next hop (Postfix cannot use the mock DNS: it reads
// /etc/resolv.conf). It is stopped by `postfix stop`, then by the master's
// PID if need be, when the test ends.
func newPostfix(t *testing.T, domain, ip string, port int, users []string, transport map[string]string) *postfixPeer {
	t.Helper()
	need(t, "postfix", "postconf")
	pu, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("no postfix user: %v (install the Debian package postfix)", err)
	}
	dir, err := os.MkdirTemp("", "posthorn-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons run as postfix: they must reach the directories.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &postfixPeer{t: t, dir: dir, conf: filepath.Join(dir, "conf"), queue: filepath.Join(dir, "queue"),
		mail: filepath.Join(dir, "mail"), domain: domain, addr: net.JoinHostPort(ip, strconv.Itoa(port))}
	t.Cleanup(p.cleanup)
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	for _, d := range []struct {
		path  string
		owned bool
		mode  os.FileMode
	}{{p.conf, false, 0o755}, {p.queue, false, 0o755}, {filepath.Join(dir, "data"), true, 0o700}, {p.mail, true, 0o700}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if d.owned {
			if err := os.Chown(d.path, uid, gid); err != nil {
				t.Fatalf("chown %s: %v (Postfix needs root)", d.path, err)
			}
		}
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		b, err := os.ReadFile(filepath.Join(certDir, "tls", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.conf, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var vmailbox, tmap strings.Builder
	for _, u := range users {
		fmt.Fprintf(&vmailbox, "%s@%s %s/\n", u, domain, u) // trailing slash: Maildir
	}
	for d, hop := range transport {
		fmt.Fprintf(&tmap, "%s %s\n", d, hop)
	}
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.%[2]s
mydomain = %[2]s
myorigin = %[2]s
mydestination =
# Postfix refuses an inet_interfaces address that no interface has (lo has
# 127.0.0.1/8): listen on loopback-only, and on %[3]s through master.cf.
inet_interfaces = loopback-only
inet_protocols = ipv4
smtp_bind_address = %[3]s
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
virtual_mailbox_domains = %[2]s
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = texthash:%[1]s/conf/vmailbox
virtual_uid_maps = static:%[4]d
virtual_gid_maps = static:%[5]d
virtual_minimum_uid = 1
transport_maps = texthash:%[1]s/conf/transport
smtp_dns_support_level = disabled
smtp_host_lookup = native
alias_maps =
alias_database =
local_recipient_maps =
maillog_file_prefixes = %[1]s
maillog_file = %[1]s/maillog
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_tls_security_level = may
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[1]s/conf/cert.pem
smtpd_tls_key_file = %[1]s/conf/key.pem
`, dir, domain, ip, uid, gid)
	// No chroot (fifth column n): the daemons use the paths above.
	masterCF := fmt.Sprintf(`%s inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
lmtp      unix  - - n -  - lmtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
virtual   unix  - n n -  - virtual
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
`, p.addr)
	for name, content := range map[string]string{"main.cf": mainCF, "master.cf": masterCF,
		"vmailbox": vmailbox.String(), "transport": tmap.String()} {
		if err := os.WriteFile(filepath.Join(p.conf, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, 60*time.Second, "", nil, "postfix", "-c", p.conf, "start")
	p.pid = p.masterPID()
	if r.err != nil {
		t.Fatalf("postfix -c %s start: %s\n--- maillog:\n%s", p.conf, r, p.maillog())
	}
	if p.pid == 0 {
		t.Fatalf("postfix started, but its master.pid is missing or bad:\n%s", p.maillog())
	}
	if !poll(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("postfix does not listen on %s:\n%s", p.addr, p.maillog())
	}
	return p
}

// alive reports whether process pid exists and is not a zombie (the
// master is a daemon: whether anyone reaps it depends on PID 1).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(after, "Z")
}

// masterPID reads the master's PID file; 0 if there is none.
func (p *postfixPeer) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.queue, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

func (p *postfixPeer) maillog() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// inbox is the Maildir of a virtual user.
func (p *postfixPeer) inbox(local string) string { return filepath.Join(p.mail, local) }

func (p *postfixPeer) cleanup() {
	if p.pid == 0 {
		p.pid = p.masterPID() // a start that failed half-way
	}
	if p.pid > 0 {
		if r := run(p.t, 30*time.Second, "", nil, "postfix", "-c", p.conf, "stop"); r.err != nil {
			p.t.Errorf("postfix stop: %s", r)
		}
		// postfix stop waits for the master to go; make sure, by its PID.
		if !poll(10*time.Second, func() bool { return !alive(p.pid) }) {
			p.t.Errorf("postfix master %d still running after postfix stop: killing it", p.pid)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	if p.t.Failed() {
		p.t.Logf("postfix maillog:\n%s", tail([]byte(p.maillog()), 6000))
	}
	os.RemoveAll(p.dir)
}
