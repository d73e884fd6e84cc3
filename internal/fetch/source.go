package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Protocols and TLS modes of a [Source].
const (
	POP3 = "pop3"
	IMAP = "imap"

	TLSImplicit = "implicit" // TLS from the first byte (ports 995, 993)
	TLSStart    = "starttls" // STLS (RFC 2595 §4) or STARTTLS (RFC 9051 §6.2.1)
	TLSNone     = "none"     // plain text: only with Insecure
)

// Defaults for the zero values of a [Source].
const (
	DefaultInterval = 5 * time.Minute
	DefaultTimeout  = 2 * time.Minute
	// maxIdleWait is the longest an IDLE runs before the folder is polled
	// (RFC 2177 §3 asks clients to end IDLE within 29 minutes).
	maxIdleWait = 10 * time.Minute
)

// Source is one remote mailbox to fetch from. It is independent of the
// configuration file: the daemon and the command line build it.
type Source struct {
	// Name identifies the source in the state directory, logs and fetch
	// ids: letters, digits and ".", "_", "-", "@", "+".
	Name     string
	Account  string // local address to deliver to (an account or an alias)
	Protocol string // POP3 or IMAP
	Host     string
	Port     int    // 0: 995/110 (POP3) or 993/143 (IMAP) by TLS mode
	TLS      string // TLSImplicit (default), TLSStart or TLSNone
	Insecure bool   // allows TLSNone
	User     string
	// Password returns the password; it is called for every connection.
	Password func(ctx context.Context) (string, error)
	Folders  []string // IMAP folders; default INBOX
	Keep     bool     // leave messages on the server
	Interval time.Duration
	Idle     bool // IMAP IDLE on every folder (RFC 2177)
	// Fingerprint is the hex SHA-256 of the server certificate (DER); when
	// set it replaces the verification against the system roots.
	Fingerprint string
	CAFile      string // PEM roots that replace the system ones
	Timeout     time.Duration
}

// check validates s and fills in defaults.
func (s *Source) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := CheckName(s.Name); err != nil {
		errs = append(errs, err)
	}
	if !strings.Contains(s.Account, "@") {
		bad("account %q is not an address", s.Account)
	}
	if s.Protocol != POP3 && s.Protocol != IMAP {
		bad("protocol %q is not pop3 or imap", s.Protocol)
	}
	if s.Host == "" {
		bad("no host")
	}
	if s.TLS == "" {
		s.TLS = TLSImplicit
	}
	switch s.TLS {
	case TLSImplicit, TLSStart:
	case TLSNone:
		if !s.Insecure {
			bad("tls none sends the password in the clear: it needs insecure")
		}
		if s.Fingerprint != "" || s.CAFile != "" {
			bad("tls none has no certificate to check")
		}
	default:
		bad("tls %q is not implicit, starttls or none", s.TLS)
	}
	if s.Port == 0 {
		s.Port = DefaultPort(s.Protocol, s.TLS)
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("port %d is not from 1 to 65535", s.Port)
	}
	if s.User == "" || s.Password == nil {
		bad("no user or password")
	}
	if s.Fingerprint != "" {
		fp, err := NormalizeFingerprint(s.Fingerprint)
		if err != nil {
			errs = append(errs, err)
		}
		s.Fingerprint = fp
	}
	if s.Protocol == POP3 && (s.Idle || len(s.Folders) > 1 || len(s.Folders) == 1 && !strings.EqualFold(s.Folders[0], "INBOX")) {
		bad("pop3 has one mailbox and no IDLE")
	}
	if len(s.Folders) == 0 {
		s.Folders = []string{"INBOX"}
	}
	if s.Interval <= 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if len(errs) > 0 {
		return fmt.Errorf("fetch source %q: %w", s.Name, errors.Join(errs...))
	}
	return nil
}

// DefaultPort is the standard port of protocol with TLS mode tls.
func DefaultPort(protocol, tls string) int {
	switch {
	case protocol == POP3 && tls == TLSImplicit:
		return 995
	case protocol == POP3:
		return 110
	case tls == TLSImplicit:
		return 993
	}
	return 143
}

// CheckName reports whether name may name a source: it becomes a file
// name and part of a header field.
func CheckName(name string) error {
	if name == "" || len(name) > 100 {
		return fmt.Errorf("source name %q must have 1 to 100 characters", name)
	}
	for _, c := range []byte(name) {
		if !nameByte(c) {
			return fmt.Errorf("source name %q may hold only letters, digits and . _ - @ +", name)
		}
	}
	if name[0] == '.' {
		return fmt.Errorf("source name %q must not start with a dot", name)
	}
	return nil
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-@+", c) >= 0
}

// NormalizeFingerprint accepts a SHA-256 fingerprint as 64 hex digits,
// optionally in colon-separated pairs (as openssl prints it), with an
// optional "sha256:" prefix, and returns it as lower-case hex.
func NormalizeFingerprint(fp string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(fp))
	s = strings.TrimPrefix(s, "sha256:")
	s = strings.TrimPrefix(s, "sha256 fingerprint=")
	s = strings.ReplaceAll(s, ":", "")
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("tls fingerprint %q is not 64 hex digits (a SHA-256)", fp)
	}
	return s, nil
}

// Fingerprint returns the hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// tlsConfig returns the client TLS configuration of s: verified against
// the system roots (or CAFile) by default, or pinned to Fingerprint.
func (s *Source) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate in it", s.CAFile)
		}
		conf.RootCAs = pool
	}
	if s.Fingerprint != "" {
		want, _ := hex.DecodeString(s.Fingerprint)
		// The pin replaces chain and name checks: the peer must present
		// exactly this certificate.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("tls: server certificate has SHA-256 %x, not the configured fingerprint", got)
			}
			return nil
		}
	}
	return conf, nil
}

// addr is the server's host:port.
func (s *Source) addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// PasswordFile returns a Password func that reads the first line of path
// on every call.
func PasswordFile(path string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		pw := strings.TrimSuffix(string(line), "\r")
		if pw == "" {
			return "", fmt.Errorf("password file %s: first line is empty", path)
		}
		return pw, nil
	}
}

// passwordCommandTimeout bounds one run of a password command.
const passwordCommandTimeout = 30 * time.Second

// PasswordCommand returns a Password func that runs command with /bin/sh
// and uses the first line of its output. The command runs in a process
// group of its own, which a timeout or the end of ctx kills whole: a
// command that hangs in a child (gpg waiting for a pinentry) held the
// source's pass and the daemon's shutdown for as long as that child
// lived, since the child kept the output pipe open.
func PasswordCommand(command string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, passwordCommandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second // a child left behind keeps the pipes open
		stdout, stderr := &capped{max: 4096}, &capped{max: 4096}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return "", fmt.Errorf("password command: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		line, _, found := bytes.Cut(stdout.Bytes(), []byte("\n"))
		if stdout.over && !found {
			return "", fmt.Errorf("password command: a first line over %d octets", stdout.max)
		}
		pw := strings.TrimSuffix(string(line), "\r")
		if pw == "" {
			return "", errors.New("password command: printed no password")
		}
		return pw, nil
	}
}

// capped keeps the first max octets written to it and drops the rest, so
// that a command printing without end cannot fill the memory. (Not an
// embedded bytes.Buffer: io.Copy would use its ReadFrom, unbounded.)
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool // octets were dropped
}

func (c *capped) Write(p []byte) (int, error) {
	room := max(c.max-c.buf.Len(), 0)
	c.buf.Write(p[:min(len(p), room)])
	c.over = c.over || len(p) > room
	return len(p), nil
}

func (c *capped) Bytes() []byte { return c.buf.Bytes() }
