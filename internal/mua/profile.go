package mua

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// TLS modes of a [Server].
const (
	TLSImplicit = "implicit" // TLS from the first byte (993, 465; RFC 8314)
	TLSStart    = "starttls" // STARTTLS before anything else (143, 587)
)

// File is a client configuration: named profiles, one of them the default.
type File struct {
	// Default names the profile used without --profile. It may be left
	// out when there is only one.
	Default  string              `toml:"default"`
	Profiles map[string]*Profile `toml:"profile"`
}

// Profile is one mail account: where to read, where to send, who we are.
type Profile struct {
	Name string `toml:"-"`

	User            string `toml:"user"`
	PasswordCommand string `toml:"password_command"` // run with /bin/sh; first line of output
	PasswordFile    string `toml:"password_file"`    // first line
	From            string `toml:"from"`             // default: user, if it is an address
	FromName        string `toml:"name"`
	// Alternates are other addresses of ours, left out of reply-all.
	Alternates []string `toml:"alternates"`

	// Trust for self-signed servers; each server may override them.
	TLSCAFile      string `toml:"tls_ca_file"`
	TLSFingerprint string `toml:"tls_fingerprint"`
	TLSServerName  string `toml:"tls_server_name"`

	SentFolder  string `toml:"sent_folder"`  // default: the \Sent folder, else "Sent"
	TrashFolder string `toml:"trash_folder"` // default: the \Trash folder, else "Trash"
	SaveSent    *bool  `toml:"save_sent"`    // APPEND a copy to Sent (default true)

	IMAP       Server `toml:"imap"`
	Submission Server `toml:"submission"`
	Direct     Direct `toml:"direct"`

	// Password returns the password. Load sets it from PasswordCommand or
	// PasswordFile; a caller may set its own (a terminal prompt).
	Password func(ctx context.Context) (string, error) `toml:"-"`
}

// Server is an IMAP or submission endpoint.
type Server struct {
	Host string `toml:"host"`
	Port int    `toml:"port"`
	TLS  string `toml:"tls"` // TLSImplicit or TLSStart

	TLSCAFile      string `toml:"tls_ca_file"`
	TLSFingerprint string `toml:"tls_fingerprint"`
	TLSServerName  string `toml:"tls_server_name"`
}

// Direct configures `mail send --direct`, delivery to the recipients' MX
// hosts without a submission server.
type Direct struct {
	DNS      []string `toml:"dns"`      // resolvers "host:port"; default /etc/resolv.conf
	Port     int      `toml:"port"`     // of the MX hosts; 25 (tests change it)
	Hostname string   `toml:"hostname"` // our EHLO name; default the host name
}

// DefaultPath is $XDG_CONFIG_HOME/posthorn/client.toml, or
// ~/.config/posthorn/client.toml.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("client config: %w", err)
	}
	return filepath.Join(dir, "posthorn", "client.toml"), nil
}

// LoadFile reads and checks a client configuration. Decoding is strict:
// an unknown key is an error. Relative paths are relative to the file.
func LoadFile(path string) (*File, error) {
	var f File
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("client config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	if len(f.Profiles) == 0 {
		return nil, fmt.Errorf("client config %s: no [profile.NAME] table", path)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(f.Profiles)) {
		p := f.Profiles[name]
		p.Name = name
		if err := p.Check(filepath.Dir(path)); err != nil {
			errs = append(errs, err)
		}
	}
	if f.Default != "" && f.Profiles[f.Default] == nil {
		errs = append(errs, fmt.Errorf("default profile %q is not defined", f.Default))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("client config %s: %w", path, errors.Join(errs...))
	}
	return &f, nil
}

// Profile returns the profile called name, or the default one for "".
func (f *File) Profile(name string) (*Profile, error) {
	if name == "" {
		name = f.Default
	}
	if name == "" {
		if len(f.Profiles) != 1 {
			return nil, fmt.Errorf("%d profiles and no default: choose one with --profile (%s)",
				len(f.Profiles), strings.Join(slices.Sorted(maps.Keys(f.Profiles)), ", "))
		}
		for n := range f.Profiles {
			name = n
		}
	}
	p := f.Profiles[name]
	if p == nil {
		return nil, fmt.Errorf("no profile %q (have %s)", name, strings.Join(slices.Sorted(maps.Keys(f.Profiles)), ", "))
	}
	return p, nil
}

// Check validates p, fills in defaults and makes paths absolute against
// dir. Servers without a host are left alone: a command that needs one
// says so (see NeedIMAP, NeedSubmission).
func (p *Profile) Check(dir string) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.From == "" && strings.Contains(p.User, "@") {
		p.From = p.User
	}
	if p.From != "" {
		if _, err := mail.ParseAddress(p.From); err != nil {
			bad("from %q is not an address: %v", p.From, err)
		}
	}
	for _, a := range p.Alternates {
		if _, err := mail.ParseAddress(a); err != nil {
			bad("alternate %q is not an address: %v", a, err)
		}
	}
	if p.PasswordCommand != "" && p.PasswordFile != "" {
		bad("password_command and password_file are both set: choose one")
	}
	p.PasswordFile = absPath(dir, p.PasswordFile)
	p.TLSCAFile = absPath(dir, p.TLSCAFile)
	if err := checkFingerprint(&p.TLSFingerprint); err != nil {
		errs = append(errs, err)
	}
	for _, s := range []struct {
		name     string
		srv      *Server
		implicit int
		start    int
	}{{"imap", &p.IMAP, 993, 143}, {"submission", &p.Submission, 465, 587}} {
		if err := s.srv.check(dir, s.implicit, s.start); err != nil {
			bad("[%s]: %w", s.name, err)
		}
	}
	if p.Direct.Port == 0 {
		p.Direct.Port = 25
	}
	if p.Direct.Port < 1 || p.Direct.Port > 65535 {
		bad("[direct] port %d is not from 1 to 65535", p.Direct.Port)
	}
	switch {
	case p.Password != nil:
	case p.PasswordCommand != "":
		p.Password = PasswordCommand(p.PasswordCommand)
	case p.PasswordFile != "":
		p.Password = PasswordFile(p.PasswordFile)
	}
	if len(errs) > 0 {
		return fmt.Errorf("profile %q: %w", p.Name, errors.Join(errs...))
	}
	return nil
}

func (s *Server) check(dir string, implicitPort, startPort int) error {
	if s.Host == "" {
		if s.Port != 0 || s.TLS != "" {
			return errors.New("port or tls without host")
		}
		return nil
	}
	if s.TLS == "" {
		s.TLS = TLSImplicit // RFC 8314 §3: prefer implicit TLS
		if s.Port == startPort {
			s.TLS = TLSStart
		}
	}
	switch s.TLS {
	case TLSImplicit:
		if s.Port == 0 {
			s.Port = implicitPort
		}
	case TLSStart:
		if s.Port == 0 {
			s.Port = startPort
		}
	default:
		return fmt.Errorf("tls %q is not %s or %s (no password ever travels in the clear)", s.TLS, TLSImplicit, TLSStart)
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("port %d is not from 1 to 65535", s.Port)
	}
	s.TLSCAFile = absPath(dir, s.TLSCAFile)
	return checkFingerprint(&s.TLSFingerprint)
}

// Addr is host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// NeedIMAP fails when the profile has no IMAP server.
func (p *Profile) NeedIMAP() error {
	if p.IMAP.Host == "" {
		return fmt.Errorf("profile %q has no [imap] host", p.Name)
	}
	return nil
}

// NeedSubmission fails when the profile has no submission server.
func (p *Profile) NeedSubmission() error {
	if p.Submission.Host == "" {
		return fmt.Errorf("profile %q has no [submission] host (or send with --direct)", p.Name)
	}
	return nil
}

// password returns the password or explains how to configure one.
func (p *Profile) password(ctx context.Context) (string, error) {
	if p.User == "" {
		return "", fmt.Errorf("profile %q has no user", p.Name)
	}
	if p.Password == nil {
		return "", fmt.Errorf("profile %q has no password_command or password_file", p.Name)
	}
	return p.Password(ctx)
}

// SavesSent reports whether sent mail is copied to the Sent folder.
func (p *Profile) SavesSent() bool { return p.SaveSent == nil || *p.SaveSent }

// FromAddress is the From of the messages we write.
func (p *Profile) FromAddress() (*mail.Address, error) {
	if p.From == "" {
		return nil, fmt.Errorf("profile %q has no from address (and user is not an address)", p.Name)
	}
	a, err := mail.ParseAddress(p.From)
	if err != nil {
		return nil, err
	}
	if p.FromName != "" {
		a.Name = p.FromName
	}
	return a, nil
}

// Me lists our own addresses, lower-cased: from, user and the alternates.
func (p *Profile) Me() []string {
	var out []string
	for _, s := range append([]string{p.From, p.User}, p.Alternates...) {
		if a, err := mail.ParseAddress(s); err == nil {
			out = append(out, strings.ToLower(a.Address))
		}
	}
	return out
}

func absPath(dir, p string) string {
	if p == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// PasswordFile returns a password source that reads the first line of
// path on every call.
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

// PasswordCommand returns a password source that runs command with
// /bin/sh (its stderr goes to ours: it may prompt) and uses the first
// line of its output.
func PasswordCommand(command string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("password command: %w", err)
		}
		line, _, _ := bytes.Cut(out, []byte("\n"))
		pw := strings.TrimSuffix(string(line), "\r")
		if pw == "" {
			return "", errors.New("password command printed nothing")
		}
		return pw, nil
	}
}

// LocalServer picks the endpoint of a server's own listeners ("host:port"):
// the first implicit-TLS one, else the first STARTTLS one. A wildcard
// host becomes loopback.
func LocalServer(implicit, start []string) Server {
	pick := func(addrs []string, mode string) (Server, bool) {
		for _, a := range addrs {
			host, port, err := net.SplitHostPort(a)
			n, perr := strconv.Atoi(port)
			if err != nil || perr != nil {
				continue
			}
			switch host {
			case "", "0.0.0.0":
				host = "127.0.0.1"
			case "::":
				host = "::1"
			}
			return Server{Host: host, Port: n, TLS: mode}, true
		}
		return Server{}, false
	}
	if s, ok := pick(implicit, TLSImplicit); ok {
		return s
	}
	s, _ := pick(start, TLSStart)
	return s
}

// TerminalPassword returns a password source that asks on the terminal
// (/dev/tty, echo off with stty), once.
func TerminalPassword(user string) func(context.Context) (string, error) {
	var cached string
	return func(context.Context) (string, error) {
		if cached != "" {
			return cached, nil
		}
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return "", errors.New("no password_command or password_file, and no terminal to ask on")
		}
		defer tty.Close()
		stty := func(arg string) error {
			c := exec.Command("stty", arg)
			c.Stdin = tty
			return c.Run()
		}
		if err := stty("-echo"); err != nil {
			return "", fmt.Errorf("password prompt: stty: %w", err)
		}
		defer func() { _ = stty("echo") }()
		fmt.Fprintf(tty, "Password for %s: ", user)
		line, err := bufio.NewReader(io.LimitReader(tty, 4096)).ReadString('\n')
		fmt.Fprintln(tty)
		if err != nil && line == "" {
			return "", fmt.Errorf("password prompt: %w", err)
		}
		cached = strings.TrimRight(line, "\r\n")
		if cached == "" {
			return "", errors.New("no password given")
		}
		return cached, nil
	}
}
