// Package outbound delivers queued mail to other domains' servers: it finds
// the MX hosts (RFC 5321 §5.1, null MX RFC 7505), tries them in preference
// order with a random choice among equals, uses STARTTLS when offered
// (opportunistic, RFC 3207), and reports one result per recipient. It
// implements queue.Transport and never retries by itself.
package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"posthorn/internal/dns"
	"posthorn/internal/message"
	"posthorn/internal/queue"
	"posthorn/internal/smtp"
)

// Options configure a Sender.
type Options struct {
	Resolver  dns.Resolver
	Hostname  string // our EHLO name; an MX of this name is a loop
	Port      int    // destination port, 25 unless testing
	RelayHost string // "host[:port]": send everything there instead of MX hosts

	ConnectTimeout time.Duration // default 30s
	CommandTimeout time.Duration // default 5m (RFC 5321 §4.5.3.2)
	// Dial opens connections; net.Dialer by default.
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger
}

// Sender implements queue.Transport over SMTP.
type Sender struct {
	opts Options
	log  *slog.Logger
}

var _ queue.Transport = (*Sender)(nil)

// New validates opts and returns a Sender.
func New(opts Options) (*Sender, error) {
	if opts.Resolver == nil && opts.RelayHost == "" {
		return nil, errors.New("outbound: Resolver is required")
	}
	if opts.Hostname == "" {
		return nil, errors.New("outbound: Hostname is required")
	}
	if opts.Port == 0 {
		opts.Port = 25
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 30 * time.Second
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 5 * time.Minute
	}
	if opts.Dial == nil {
		d := &net.Dialer{Timeout: opts.ConnectTimeout}
		opts.Dial = d.DialContext
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{opts: opts, log: opts.Logger}, nil
}

// all returns the same result for every recipient.
func all(env queue.Envelope, code int, enhanced, text string) []queue.Result {
	out := make([]queue.Result, len(env.Rcpts))
	for i := range out {
		out[i] = queue.Result{Code: code, Enhanced: enhanced, Text: text}
	}
	return out
}

// Deliver implements queue.Transport.
func (s *Sender) Deliver(ctx context.Context, env queue.Envelope, body io.ReaderAt, size int64) []queue.Result {
	hosts, res := s.route(ctx, env)
	if res != nil {
		return res
	}
	var last error
	tried, loops := 0, 0
	for i, h := range hosts {
		if i >= maxHosts || tried >= maxAddrs {
			break
		}
		addrs, err := s.addrs(ctx, h)
		if err != nil {
			last = err
			continue
		}
		for _, a := range addrs {
			if tried++; tried > maxAddrs {
				break
			}
			out, err := s.try(ctx, env, h, a, body, size)
			if err == nil {
				return out
			}
			last = err
			if errors.Is(err, errLoop) {
				loops++
				s.log.Warn("outbound: a server named itself with our own hostname", "msgid", env.ID, "remote", h.name, "addr", a, "err", err)
				continue
			}
			s.log.Info("outbound attempt failed", "msgid", env.ID, "remote", h.name, "addr", a, "err", err)
		}
	}
	if loops > 0 && loops == min(tried, maxAddrs) {
		// Every server tried was this one (or claims to be): sending
		// again would only loop. Postfix bounces this case the same way.
		return all(env, 554, "5.4.6", "mail for "+env.Domain+" loops back to myself: "+last.Error())
	}
	if last == nil {
		last = errors.New("no address to try")
	}
	if errors.Is(last, smtp.ErrAfterData) {
		return all(env, 451, "4.4.2", last.Error())
	}
	return all(env, 451, "4.4.1", "no server could be reached: "+last.Error())
}

// Bounds of one delivery attempt, like Postfix's smtp_mx_address_limit:
// a domain publishing 1,500 MX hosts made each attempt look up all of them
// and try 1,500 connections, to addresses of the domain's choosing.
const (
	maxHosts = 10 // MX hosts looked up
	maxAddrs = 5  // addresses tried
)

// host is one server to try.
type host struct {
	name string
	port int
}

// route finds the servers for env.Domain, or a result for every recipient
// when there is nothing to try.
func (s *Sender) route(ctx context.Context, env queue.Envelope) ([]host, []queue.Result) {
	if s.opts.RelayHost != "" {
		name, port := splitHostPort(s.opts.RelayHost, s.opts.Port)
		return []host{{name, port}}, nil
	}
	mxs, err := s.opts.Resolver.LookupMX(ctx, env.Domain)
	switch {
	case errors.Is(err, dns.ErrNXDomain):
		return nil, all(env, 550, "5.1.2", "domain "+env.Domain+" does not exist")
	case err != nil:
		return nil, all(env, 451, "4.4.3", "DNS lookup failed: "+err.Error())
	case len(mxs) == 1 && mxs[0].Host == "":
		// RFC 7505 §3: a null MX says the domain accepts no mail.
		return nil, all(env, 556, "5.1.10", "domain "+env.Domain+" does not accept mail (null MX)")
	case len(mxs) == 0:
		mxs = []dns.MX{{Host: env.Domain}} // RFC 5321 §5.1: implicit MX
	}
	hosts := s.order(mxs)
	if len(hosts) == 0 {
		return nil, all(env, 554, "5.4.6", "mail for "+env.Domain+" loops back to myself")
	}
	return hosts, nil
}

// order sorts by preference, shuffles equal preferences (RFC 5321 §5.1)
// and drops our own name: mail to a domain whose MX is us is a loop.
func (s *Sender) order(mxs []dns.MX) []host {
	rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
	slices.SortStableFunc(mxs, func(a, b dns.MX) int { return int(a.Pref) - int(b.Pref) })
	var out []host
	for _, m := range mxs {
		if strings.EqualFold(m.Host, s.opts.Hostname) || m.Host == "" {
			continue
		}
		out = append(out, host{m.Host, s.opts.Port})
	}
	return out
}

func (s *Sender) addrs(ctx context.Context, h host) ([]string, error) {
	if ip, err := netip.ParseAddr(strings.Trim(h.name, "[]")); err == nil {
		return []string{net.JoinHostPort(ip.String(), strconv.Itoa(h.port))}, nil
	}
	if s.opts.Resolver == nil {
		return []string{net.JoinHostPort(h.name, strconv.Itoa(h.port))}, nil
	}
	ips, err := s.opts.Resolver.LookupIP(ctx, h.name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err)
	}
	var out []string
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(h.port)))
	}
	return out, nil
}

func splitHostPort(hp string, def int) (string, int) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, def
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return h, def
	}
	return h, n
}

// try runs one session. An error means this server could not take the
// message and the next one should be tried; refusals are results.
func (s *Sender) try(ctx context.Context, env queue.Envelope, h host, addr string, body io.ReaderAt, size int64) ([]queue.Result, error) {
	c, err := s.connect(ctx, h, addr, true)
	if errors.Is(err, errTLS) {
		// Opportunistic TLS failed: like Postfix at "may", try once more
		// in plaintext rather than not at all.
		c, err = s.connect(ctx, h, addr, false)
	}
	if err != nil {
		return nil, err
	}
	// The client's reads obey only their deadline: when ctx ends (the
	// daemon is stopping) close the connection to end the transaction.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// QUIT in the background: the results are final once DATA is
	// answered, and the queue must record them at once. Waiting for a
	// QUIT reply that never came held them for the command timeout, and
	// a crash then sent the message again.
	defer func() { go c.QuitWithin(quitTimeout) }()
	return s.transact(c, env, h, body, size)
}

// quitTimeout bounds the wait for the reply to QUIT.
const quitTimeout = 10 * time.Second

var errTLS = errors.New("STARTTLS failed")

// errLoop is a server that gives our own hostname as its name, in its
// greeting or its EHLO reply: most likely ourselves, reached through an
// MX record, an address or a relay_host that leads back here. Postfix
// treats this the same way ("mail for … loops back to myself").
var errLoop = errors.New("the server greeted us with our own hostname")

// checkLoop returns errLoop when name is our own hostname.
func (s *Sender) checkLoop(name string) error {
	if name != "" && strings.EqualFold(strings.TrimSuffix(name, "."), strings.TrimSuffix(s.opts.Hostname, ".")) {
		return fmt.Errorf("%w (%s)", errLoop, name)
	}
	return nil
}

// connect dials, reads the greeting, says EHLO and starts TLS if offered.
func (s *Sender) connect(ctx context.Context, h host, addr string, useTLS bool) (*smtp.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	defer cancel()
	nc, err := s.opts.Dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Reads obey only their deadline: when ctx ends (the daemon is
	// stopping) close the connection, or a server that never greets held
	// the shutdown for the command timeout.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c, err := smtp.NewClient(nc, s.opts.CommandTimeout)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := s.checkLoop(c.GreetingName()); err != nil {
		c.Quit()
		return nil, err
	}
	if err := c.Hello(s.opts.Hostname); err != nil {
		c.Close()
		return nil, err
	}
	if err := s.checkLoop(c.HelloName); err != nil {
		c.Quit()
		return nil, err
	}
	if _, ok := c.Ext("STARTTLS"); !ok || !useTLS {
		return c, nil
	}
	cfg := &tls.Config{ServerName: h.name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	if err := c.StartTLS(ctx, cfg); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %v", errTLS, err)
	}
	if err := c.Hello(s.opts.Hostname); err != nil {
		c.Close()
		return nil, err
	}
	if err := s.checkLoop(c.HelloName); err != nil { // the name may change with TLS
		c.Quit()
		return nil, err
	}
	return c, nil
}

// transact sends the message and maps replies to per-recipient results.
func (s *Sender) transact(c *smtp.Client, env queue.Envelope, h host, body io.ReaderAt, size int64) ([]queue.Result, error) {
	scan := scanBody(body, size)
	e := smtp.Envelope{From: env.From, Size: size, Body8: scan.eightBit, UTF8: env.UTF8, Ret: env.Ret, EnvID: env.EnvID}
	for _, r := range env.Rcpts {
		e.Rcpts = append(e.Rcpts, smtp.EnvelopeRcpt{Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt})
	}
	var data io.Reader = io.NewSectionReader(body, 0, size)
	if _, ok := c.Ext("8BITMIME"); scan.eightBit && !ok {
		// RFC 6152 §3: no 8-bit data to a server without 8BITMIME;
		// converted (as Postfix does) rather than returned.
		pr, pw := io.Pipe()
		go func() {
			var err error
			defer func() {
				// Outside the queue worker's recover: a panic here
				// would end the daemon, at every start while the
				// message stays queued. It fails this attempt.
				if r := recover(); r != nil {
					err = fmt.Errorf("8BITMIME downgrade: panic: %v", r)
				}
				pw.CloseWithError(err)
			}()
			err = message.Downgrade(pw, body, size)
		}()
		defer pr.Close() // ends the writer if Send stopped reading
		// The converted size is not known before it is sent, and SIZE=
		// declares the octets sent (RFC 1870 §4): none is declared.
		data, e.Body8, e.Size = pr, false, 0
	}
	if scan.longest > message.MaxLine {
		// Accepted with a line over RFC 5321's 1000 octets (the SMTP
		// server takes up to smtp.max_line_length, as Postfix takes any),
		// the message is sent with such lines broken, as Postfix's
		// smtp_line_length_limit does: a server that holds to the limit
		// refuses it otherwise.
		data = message.FoldLines(data, message.MaxLine)
	}
	res, err := c.Send(e, data)
	if errors.Is(err, smtp.ErrNeedsSMTPUTF8) {
		return all(env, 553, "5.6.7", h.name+" does not support SMTPUTF8, which this message needs"), nil
	}
	if err != nil {
		return nil, err
	}
	_, dsn := c.Ext("DSN")
	return results(env, h.name, res, !dsn), nil
}

func results(env queue.Envelope, remote string, res smtp.SendResult, relayed bool) []queue.Result {
	if c := res.Mail.Code; c != smtp.CodeOK {
		if c/100 == 2 || c/100 == 3 {
			// RFC 5321 §4.3.2: MAIL succeeds with 250 only. Another
			// positive reply (a 252 was seen) is not success: the client
			// ended the message empty, or never sent it. Try again later.
			return withRemote(all(env, 451, "4.5.0", fmt.Sprintf("%s answered MAIL with %d, not 250: %s", remote, c, replyText(res.Mail))), remote)
		}
		return withRemote(all(env, res.Mail.Code, res.Mail.Enhanced, replyText(res.Mail)), remote)
	}
	out := make([]queue.Result, len(env.Rcpts))
	for i, r := range res.Rcpts {
		rep := r
		if r.Code/100 == 2 {
			rep = res.Data
		}
		if rep.Code == 0 { // DATA never ran: treat as temporary
			rep = smtp.Reply{Code: 451, Enhanced: "4.4.2", Lines: []string{"transaction ended before DATA"}}
		}
		ok := rep.Code/100 == 2
		out[i] = queue.Result{Code: rep.Code, Enhanced: rep.Enhanced, Text: replyText(rep), Remote: remote, Relayed: relayed && ok, PassedOn: !relayed && ok}
	}
	return out
}

// maxReplyText bounds the remote's reply text kept with each recipient
// (queue row, log, DSN). A reply may have 100 lines of 2 KiB: kept whole
// for each of 500 recipients, one hostile server's answers could put
// about 100 MB into the queue's database.
const maxReplyText = 512

// replyText is r's text, cut to maxReplyText octets on a UTF-8 boundary.
func replyText(r smtp.Reply) string {
	t := r.Text()
	if len(t) <= maxReplyText {
		return t
	}
	cut := maxReplyText
	for cut > 0 && !utf8.RuneStart(t[cut]) {
		cut--
	}
	return t[:cut] + " [...]"
}

func withRemote(rs []queue.Result, remote string) []queue.Result {
	for i := range rs {
		rs[i].Remote = remote
	}
	return rs
}

// bodyScan is what transact needs to know of a message before sending it.
type bodyScan struct {
	eightBit bool // an octet over 127
	longest  int  // the longest line, its line end not counted
}

// scanBody reads the message once for bodyScan.
func scanBody(body io.ReaderAt, size int64) bodyScan {
	var s bodyScan
	line, cr := 0, false // octets of the current line so far; the last was CR
	buf := make([]byte, 32<<10)
	for off := int64(0); off < size; {
		n, err := body.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for _, b := range buf[:n] {
			if b == '\n' {
				if cr {
					line--
				}
				s.longest, line = max(s.longest, line), 0
			} else {
				s.eightBit = s.eightBit || b >= 0x80
				line++
			}
			cr = b == '\r'
		}
		off += int64(n)
		if err != nil {
			break
		}
	}
	s.longest = max(s.longest, line)
	return s
}
