package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Fetch is one remote mailbox that posthorn fetches mail from, written as
// a [[fetch]] table. Defaults are filled in by Validate.
type Fetch struct {
	Name            string   `toml:"name" comment:"Name of this source: letters, digits, . _ - @ + (used for its state file and the X-Posthorn-Fetch field)."`
	Account         string   `toml:"account" comment:"Local address the mail is delivered to (an account or an alias; Sieve applies)."`
	Protocol        string   `toml:"protocol" comment:"pop3 or imap."`
	Host            string   `toml:"host" comment:"Remote server name or IP address."`
	Port            int      `toml:"port" comment:"Remote port; 0: 995/993 for implicit TLS, 110/143 otherwise."`
	TLS             string   `toml:"tls" comment:"implicit (TLS from the start), starttls (STLS/STARTTLS) or none (needs insecure = true)."`
	Insecure        bool     `toml:"insecure" comment:"Allow tls = \"none\": the password and mail cross the network in the clear."`
	User            string   `toml:"user" comment:"Remote login name."`
	PasswordFile    string   `toml:"password_file" comment:"Absolute path of a file whose first line is the password."`
	PasswordCommand string   `toml:"password_command" comment:"Shell command that prints the password (run for every connection), instead of password_file."`
	Folders         []string `toml:"folders" comment:"IMAP folders to fetch. Empty: INBOX."`
	Keep            bool     `toml:"keep" comment:"Leave messages on the server. false: delete each one once it is safely delivered here."`
	Interval        Duration `toml:"interval" comment:"Time between two polls (with idle: the longest IDLE before a poll)."`
	Idle            bool     `toml:"idle" comment:"IMAP: wait for new mail with IDLE on every folder (one connection each), instead of polling."`
	TLSFingerprint  string   `toml:"tls_fingerprint" comment:"SHA-256 of the server's certificate (hex, colons allowed), for self-signed peers: replaces CA and name checks."`
	TLSCAFile       string   `toml:"tls_ca_file" comment:"Absolute path of PEM CA certificates to verify the server with, instead of the system ones."`
	Timeout         Duration `toml:"timeout" comment:"Timeout of every network read and write (not the wait inside IDLE)."`
}

// Fetch defaults.
const (
	fetchInterval = Duration(5 * time.Minute)
	fetchTimeout  = Duration(2 * time.Minute)
)

// checkFetch validates every [[fetch]] table and fills in defaults.
func (c *Config) checkFetch(p *problems) {
	if len(c.Fetch) == 0 {
		c.Fetch = nil
		return
	}
	names := map[string]bool{}
	for i := range c.Fetch {
		f := &c.Fetch[i]
		key := fmt.Sprintf("fetch[%d]", i)
		if f.Name != "" {
			key = fmt.Sprintf("fetch[%q]", f.Name)
		}
		f.check(p, key)
		if names[f.Name] {
			p.addf(key+".name", "%q is used by another [[fetch]] table", f.Name)
		}
		names[f.Name] = true
	}
}

// check validates one source; key names it in problems.
func (f *Fetch) check(p *problems, key string) {
	if err := checkFetchName(f.Name); err != nil {
		p.add(key+".name", err)
	}
	if local, domain, ok := strings.Cut(f.Account, "@"); !ok || local == "" || checkHostname(domain) != nil {
		p.addf(key+".account", "%q is not an address (user@domain)", f.Account)
	}
	f.Protocol = strings.ToLower(f.Protocol)
	if f.Protocol != "pop3" && f.Protocol != "imap" {
		p.addf(key+".protocol", "%q is not pop3 or imap", f.Protocol)
	}
	if !validHost(f.Host) {
		p.addf(key+".host", "%q is not an IP address or a DNS name", f.Host)
	}
	if f.Port < 0 || f.Port > 65535 {
		p.addf(key+".port", "must be from 0 to 65535, got %d", f.Port)
	}
	f.checkTLS(p, key)
	if f.User == "" {
		p.addf(key+".user", "must be set")
	}
	switch {
	case f.PasswordFile == "" && f.PasswordCommand == "":
		p.addf(key+".password_file", "set password_file or password_command")
	case f.PasswordFile != "" && f.PasswordCommand != "":
		p.addf(key+".password_command", "set password_file or password_command, not both")
	case f.PasswordFile != "" && !filepath.IsAbs(f.PasswordFile):
		p.addf(key+".password_file", "%q must be an absolute path", f.PasswordFile)
	}
	f.checkFolders(p, key)
	if f.Interval == 0 {
		f.Interval = fetchInterval
	}
	if f.Timeout == 0 {
		f.Timeout = fetchTimeout
	}
	if f.Interval < Duration(time.Second) {
		p.addf(key+".interval", "must be at least 1s, got %v", f.Interval)
	}
	if f.Timeout < Duration(time.Second) {
		p.addf(key+".timeout", "must be at least 1s, got %v", f.Timeout)
	}
}

// checkTLS validates the TLS mode and how the peer is verified.
func (f *Fetch) checkTLS(p *problems, key string) {
	if f.TLS == "" {
		f.TLS = "implicit"
	}
	switch f.TLS {
	case "implicit", "starttls":
	case "none":
		if !f.Insecure {
			p.addf(key+".tls", "\"none\" sends the password in the clear: set insecure = true to allow it")
		}
		if f.TLSFingerprint != "" || f.TLSCAFile != "" {
			p.addf(key+".tls", "\"none\" has no certificate to check against tls_fingerprint or tls_ca_file")
		}
	default:
		p.addf(key+".tls", "%q is not implicit, starttls or none", f.TLS)
	}
	if f.TLSFingerprint != "" {
		fp := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(f.TLSFingerprint), "sha256:"), ":", ""))
		if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size {
			p.addf(key+".tls_fingerprint", "%q is not a SHA-256 (64 hex digits)", f.TLSFingerprint)
		} else {
			f.TLSFingerprint = fp
		}
	}
	if f.TLSFingerprint != "" && f.TLSCAFile != "" {
		p.addf(key+".tls_ca_file", "set tls_fingerprint or tls_ca_file, not both")
	}
	if f.TLSCAFile != "" && !filepath.IsAbs(f.TLSCAFile) {
		p.addf(key+".tls_ca_file", "%q must be an absolute path", f.TLSCAFile)
	}
}

// checkFolders validates the folder list: IMAP only, no duplicates.
func (f *Fetch) checkFolders(p *problems, key string) {
	if f.Protocol == "pop3" {
		if len(f.Folders) > 1 || len(f.Folders) == 1 && !strings.EqualFold(f.Folders[0], "INBOX") {
			p.addf(key+".folders", "pop3 has only INBOX")
		}
		if f.Idle {
			p.addf(key+".idle", "pop3 has no IDLE")
		}
	}
	if len(f.Folders) == 0 {
		f.Folders = []string{"INBOX"}
	}
	seen := map[string]bool{}
	for _, name := range f.Folders {
		switch {
		case name == "" || strings.ContainsAny(name, "\r\n\x00"):
			p.addf(key+".folders", "%q is not a folder name", name)
		case seen[name]:
			p.addf(key+".folders", "%q is listed twice", name)
		}
		seen[name] = true
	}
}

// checkFetchName allows names that are safe as a file name and in a
// header field (the same rule as fetch.CheckName).
func checkFetchName(name string) error {
	if name == "" || len(name) > 100 {
		return fmt.Errorf("%q must have 1 to 100 characters", name)
	}
	if name[0] == '.' {
		return fmt.Errorf("%q must not start with a dot", name)
	}
	for _, c := range []byte(name) {
		if !isBare(c) && c != '.' && c != '@' && c != '+' {
			return fmt.Errorf("%q may hold only letters, digits and . _ - @ +", name)
		}
	}
	return nil
}
