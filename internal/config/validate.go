package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validate checks every option and reports all problems at once, joined,
// each prefixed by its dotted key ("smtp.max_recipients: ...").
//
// It also normalises c in place: Hostname is lower-cased, DNS servers
// without a port get ":53", and empty lists become nil.
func (c *Config) Validate() error {
	var p problems
	if err := checkHostname(c.Hostname); err != nil {
		p.add("hostname", err)
	}
	c.Hostname = strings.ToLower(c.Hostname)
	c.Log.check(&p)
	c.Listen.check(&p)
	c.TLS.check(&p)
	c.SMTP.check(&p)
	c.IMAP.check(&p)
	c.POP3.check(&p)
	c.Delivery.check(&p)
	c.Auth.check(&p)
	c.Queue.check(&p)
	c.Outbound.check(&p)
	c.DNS.check(&p)
	c.Store.check(&p)
	c.Unix.check(&p)
	c.checkFetch(&p)
	return errors.Join(p...)
}

// problems collects validation errors, each about one key.
type problems []error

// add records err about the dotted key.
func (p *problems) add(key string, err error) {
	*p = append(*p, &keyError{key: key, err: err})
}

// addf records a formatted error about the dotted key.
func (p *problems) addf(key, format string, args ...any) {
	p.add(key, fmt.Errorf(format, args...))
}

// keyError is a problem with the value of one key.
type keyError struct {
	key string // dotted, such as "smtp.max_errors"
	err error
}

// Error renders e as "key: problem".
func (e *keyError) Error() string {
	return e.key + ": " + e.err.Error()
}

// Unwrap returns the problem.
func (e *keyError) Unwrap() error {
	return e.err
}

// check validates the log options.
func (l Log) check(p *problems) {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		p.addf("log.level", "%q is not debug, info, warn or error", l.Level)
	}
	if !slices.Contains([]string{"text", "json"}, l.Format) {
		p.addf("log.format", "%q is not text or json", l.Format)
	}
}

// check validates every listen address, rejects an address listed twice and
// turns empty lists into nil.
func (l *Listen) check(p *problems) {
	seen := make(map[string]string) // normalised address → service
	for _, service := range Services {
		key := "listen." + service
		addrs := l.field(service)
		if len(*addrs) == 0 {
			*addrs = nil
		}
		for _, a := range *addrs {
			norm, err := listenAddr(service, a)
			if err != nil {
				p.add(key, err)
				continue
			}
			if prev, dup := seen[norm]; dup {
				p.addf(key, "%q is also listed in listen.%s", a, prev)
				continue
			}
			seen[norm] = service
		}
	}
}

// listenAddr checks one listen entry of service and returns it normalised,
// so that duplicates can be found.
func listenAddr(service, addr string) (string, error) {
	if !isSocketPath(addr) {
		return hostPort(addr)
	}
	if service != "lmtp" {
		return "", fmt.Errorf("%q: only lmtp may listen on a unix socket", addr)
	}
	if !filepath.IsAbs(addr) {
		return "", fmt.Errorf("unix socket path %q must be absolute", addr)
	}
	return "unix:" + filepath.Clean(addr), nil
}

// hostPort checks a listen address: "host:port", where host may be empty
// (all addresses), an IP address (IPv6 in brackets) or a DNS name, and port
// is a number from 0 to 65535 (0 picks a free port).
func hostPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host != "" && !validHost(host) {
		return "", fmt.Errorf("%q: %q is not an IP address or a DNS name", addr, host)
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(n, 10)), nil
}

// validHost reports whether host is an IP address or a DNS name.
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return checkHostname(host) == nil
}

// checkHostname checks that name is a DNS name of letter-digit-hyphen
// labels (RFC 1035 §2.3.1, with the leading digits of RFC 1123 §2.1), in
// either case.
func checkHostname(name string) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	// RFC 1035 §2.3.4: 255 octets on the wire are 253 characters as text.
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", name)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
	}
	return nil
}

// checkLabel checks one label of a DNS name.
func checkLabel(label string) error {
	// RFC 1035 §2.3.4: labels are 63 octets or less.
	if label == "" || len(label) > 63 {
		return fmt.Errorf("label %q must have 1 to 63 characters", label)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("label %q must not start or end with a hyphen", label)
	}
	for _, c := range []byte(label) {
		if !isBare(c) || c == '_' {
			return fmt.Errorf("label %q may hold only letters, digits and hyphens", label)
		}
	}
	return nil
}

// check requires the certificate and key to be set together.
func (t TLS) check(p *problems) {
	switch {
	case t.CertFile == "" && t.KeyFile != "":
		p.addf("tls.cert_file", "must be set when tls.key_file is")
	case t.CertFile != "" && t.KeyFile == "":
		p.addf("tls.key_file", "must be set when tls.cert_file is")
	}
}

// check validates the SMTP limits and timeouts.
func (s SMTP) check(p *problems) {
	atLeast(p, "smtp.max_message_size", s.MaxMessageSize, 1<<10)
	// RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients,
	// but a lower limit is the operator's choice; 1 is the floor.
	atLeast(p, "smtp.max_recipients", s.MaxRecipients, 1)
	// RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters, so
	// ordinary mail needs at least that.
	atLeast(p, "smtp.max_line_length", s.MaxLineLength, 78)
	atLeast(p, "smtp.max_header_size", s.MaxHeaderSize, 1<<10)
	atLeast(p, "smtp.max_headers", s.MaxHeaders, 1)
	atLeast(p, "smtp.max_received", s.MaxReceived, 1)
	atLeast(p, "smtp.max_connections", s.MaxConnections, 1)
	atLeast(p, "smtp.max_connections_per_ip", s.MaxConnectionsPerIP, 1)
	atLeast(p, "smtp.max_errors", s.MaxErrors, 1)
	positive(p, "smtp.command_timeout", s.CommandTimeout)
	positive(p, "smtp.data_timeout", s.DataTimeout)
	positive(p, "smtp.shutdown_timeout", s.ShutdownTimeout)
}

func (c IMAP) check(p *problems) {
	atLeast(p, "imap.max_connections", c.MaxConnections, 1)
	atLeast(p, "imap.max_connections_per_ip", c.MaxConnectionsPerIP, 1)
	atLeast(p, "imap.max_connections_per_user", c.MaxConnectionsPerUser, 1)
	// RFC 9051 §5.4: the autologout timer must be at least 30 minutes.
	if time.Duration(c.IdleTimeout) < 30*time.Minute {
		p.addf("imap.idle_timeout", "at least 30m (RFC 9051 section 5.4)")
	}
	atLeast(p, "imap.header_cache", c.HeaderCache, 1<<20)
}

func (c POP3) check(p *problems) {
	atLeast(p, "pop3.max_connections", c.MaxConnections, 1)
	atLeast(p, "pop3.max_connections_per_ip", c.MaxConnectionsPerIP, 1)
}

// atLeast records a problem with key when got is below least.
func atLeast[T ~int | ~int64](p *problems, key string, got, least T) {
	if got < least {
		p.addf(key, "must be at least %v, got %v", least, got)
	}
}

// positive records a problem with key when d is not above zero.
func positive(p *problems, key string, d Duration) {
	if d <= 0 {
		p.addf(key, "must be positive, got %v", d)
	}
}

// check validates the sub-address separator, which must not be mistaken
// for another part of an address.
func (d Delivery) check(p *problems) {
	sep := d.SubaddressSeparator
	if !utf8.ValidString(sep) {
		p.addf("delivery.subaddress_separator", "%q is not valid UTF-8", sep)
		return
	}
	for _, r := range sep {
		if r == '@' || r == '.' || r == '"' || unicode.IsSpace(r) || unicode.IsControl(r) {
			p.addf("delivery.subaddress_separator", "%q may not contain %q", sep, r)
		}
	}
}

// check validates the resolvers, normalising each to host:port, and the
// timeout.
func (d *DNS) check(p *problems) {
	var servers []string
	for _, s := range d.Servers {
		norm, err := resolverAddr(s)
		if err != nil {
			p.add("dns.servers", err)
			norm = s
		}
		servers = append(servers, norm)
	}
	d.Servers = servers
	positive(p, "dns.timeout", d.Timeout)
}

// resolverAddr checks a resolver address, "host" or "host:port" (IPv6 in
// brackets, or bare without a port), and returns it as host:port, adding
// the DNS port 53 when there is none.
func resolverAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "53"
		if inner, ok := strings.CutPrefix(addr, "["); ok {
			host, ok = strings.CutSuffix(inner, "]")
			if ip, err := netip.ParseAddr(host); !ok || err != nil || !ip.Is6() {
				return "", fmt.Errorf("%q is not a bracketed IPv6 address", addr)
			}
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if !validHost(host) {
		return "", fmt.Errorf("%q is not an IP address or a DNS name", host)
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(n, 10)), nil
}

// check validates the storage backend.
func (s Store) check(p *problems) {
	switch s.Backend {
	case "local":
	case "postgres":
		if s.DSN == "" {
			p.addf("store.dsn", "must be set for backend \"postgres\"")
		}
	default:
		p.addf("store.backend", "%q is not local or postgres", s.Backend)
	}
}

// check validates the login limits.
func (a *Auth) check(p *problems) {
	atLeast(p, "auth.max_failures", a.MaxFailures, 1)
	positive(p, "auth.failure_window", a.FailureWindow)
	positive(p, "auth.block_time", a.BlockTime)
	positive(p, "auth.max_delay", a.MaxDelay)
	for _, s := range a.TrustedNetworks {
		if _, err := parsePrefix(s); err != nil {
			p.addf("auth.trusted_networks", "%q is not an address or a network (\"10.0.0.0/8\")", s)
		}
	}
	if len(a.TrustedNetworks) == 0 {
		a.TrustedNetworks = nil // as the default has it
	}
}

// check validates the retry schedule.
func (q Queue) check(p *problems) {
	positive(p, "queue.min_backoff", q.MinBackoff)
	positive(p, "queue.lifetime", q.Lifetime)
	positive(p, "queue.delay_warning", q.DelayWarning)
	if q.MaxBackoff < q.MinBackoff {
		p.addf("queue.max_backoff", "must be at least queue.min_backoff (%v), got %v", q.MinBackoff, q.MaxBackoff)
	}
	atLeast(p, "queue.workers", q.Workers, 1)
	atLeast(p, "queue.per_domain", q.PerDomain, 1)
}

// check validates the outbound settings.
func (o Outbound) check(p *problems) {
	if o.Port < 1 || o.Port > 65535 {
		p.addf("outbound.port", "must be from 1 to 65535, got %d", o.Port)
	}
	if o.RelayHost != "" {
		if _, err := hostPort(o.RelayHost); err != nil && !validHost(o.RelayHost) {
			p.addf("outbound.relay_host", "%q is not host or host:port", o.RelayHost)
		}
	}
	positive(p, "outbound.connect_timeout", o.ConnectTimeout)
	positive(p, "outbound.command_timeout", o.CommandTimeout)
}

// check validates the classic Unix mail settings, normalising domains.
func (u *Unix) check(p *problems) {
	for i, d := range u.Domains {
		if err := checkHostname(d); err != nil {
			p.add(fmt.Sprintf("unix.domains[%d]", i), err)
		}
		u.Domains[i] = strings.ToLower(strings.TrimSuffix(d, "."))
	}
	if u.Mailbox != "mbox" && u.Mailbox != "maildir" {
		p.addf("unix.mailbox", "must be mbox or maildir, got %q", u.Mailbox)
	}
	if u.MaildirName == "" || strings.Contains(u.MaildirName, "..") || filepath.IsAbs(u.MaildirName) {
		p.addf("unix.maildir_name", "must be a relative path inside the home directory, got %q", u.MaildirName)
	}
	if len(u.Domains) > 0 && (u.PasswdFile == "" || u.SpoolDir == "") {
		p.addf("unix", "passwd_file and spool_dir are required when domains is set")
	}
	if u.PipeTimeout.D() <= 0 {
		p.addf("unix.pipe_timeout", "must be positive")
	}
	if len(u.Domains) == 0 {
		u.Domains = nil
	}
}
