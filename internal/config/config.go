// Package config turns a TOML file into a validated, immutable [Config].
//
// Defaults live here and nowhere else. Decoding is strict: an unknown or
// mistyped key is an error that names the key and its line, so a typo never
// silently leaves a default in force. Only the daemon and cli packages import
// config; every other package takes its own Options struct.
package config

import (
	"net/netip"
	"time"
)

// Services are the listener names a [Listen] table may use, in the order the
// template and `serve --dev` list them.
var Services = []string{"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "lmtp", "managesieve", "http"}

// Config is the whole configuration. Paths in it are absolute after Load:
// relative ones are resolved against the directory of the config file.
type Config struct {
	// Hostname is this server's name: SMTP greeting, EHLO, Received headers.
	Hostname string `toml:"hostname" comment:"Name of this mail server: used in the SMTP greeting, EHLO and Received headers."`
	// DataDir holds the database, mail and spool.
	DataDir string `toml:"data_dir" comment:"Directory for the database, mailboxes and spool (relative paths are relative to this file)."`

	Log      Log      `toml:"log"`
	Listen   Listen   `toml:"listen" comment:"Listeners: service name = list of \"host:port\" (or a unix socket path for lmtp). A service not listed is off."`
	TLS      TLS      `toml:"tls"`
	SMTP     SMTP     `toml:"smtp"`
	IMAP     IMAP     `toml:"imap"`
	POP3     POP3     `toml:"pop3"`
	Delivery Delivery `toml:"delivery"`
	Auth     Auth     `toml:"auth"`
	Queue    Queue    `toml:"queue"`
	Outbound Outbound `toml:"outbound"`
	DNS      DNS      `toml:"dns"`
	Store    Store    `toml:"store"`
	Unix     Unix     `toml:"unix" comment:"Classic Unix mail: domains whose users are this host's accounts (/etc/passwd), with /var/mail or ~/Maildir, /etc/aliases and ~/.forward. Off unless domains is set."`
	Fetch    []Fetch  `toml:"fetch" comment:"Remote POP3/IMAP mailboxes to fetch mail from (posthorn fetch, and the daemon). To add one, replace this line with a [[fetch]] table per source: name, account, protocol, host, user, password_file; see docs/fetch.md."`
}

// Unix configures classic Unix mail for the host's own accounts.
type Unix struct {
	Domains     []string `toml:"domains" comment:"Domains whose local parts are login names of this host (often just the hostname). Empty: off."`
	PasswdFile  string   `toml:"passwd_file" comment:"The account database (name:x:uid:gid:gecos:home:shell lines)."`
	Mailbox     string   `toml:"mailbox" comment:"Where a user's mail goes: mbox (spool_dir/USER, mboxrd, dotlock + fcntl locks) or maildir (~USER/maildir_name)."`
	SpoolDir    string   `toml:"spool_dir" comment:"Directory of mbox spool files, for mailbox = \"mbox\"."`
	MaildirName string   `toml:"maildir_name" comment:"Maildir under each home directory, for mailbox = \"maildir\"."`
	Aliases     []string `toml:"aliases" comment:"Alias files in /etc/aliases format (name: target, ...; :include:FILE). Read again when they change; posthorn newaliases checks them."`
	Forward     bool     `toml:"forward" comment:"Honour ~/.forward files (owned by the user, not writable by others)."`
	AllowPipes  bool     `toml:"allow_pipes" comment:"Allow \"|command\" targets in alias files and .forward. Alias pipes run as nobody, .forward pipes as the user."`
	AllowFiles  bool     `toml:"allow_files" comment:"Allow /path/file targets (an mbox appended to) in alias files and .forward."`
	Root        string   `toml:"root" comment:"Where mail for root goes when no alias says: a login name or an address. Empty: root's own mailbox."`
	PipeTimeout Duration `toml:"pipe_timeout" comment:"Longest run of one pipe command."`
}

// Auth limits password guessing on every listener that authenticates.
type Auth struct {
	MaxFailures   int      `toml:"max_failures" comment:"Failed logins from one IP address within failure_window before it is blocked."`
	FailureWindow Duration `toml:"failure_window" comment:"How long a failed login counts against its IP address and account."`
	BlockTime     Duration `toml:"block_time" comment:"How long a blocked IP address gets 454 4.7.0 (SMTP) or NO (IMAP) without its password being checked."`
	MaxDelay      Duration `toml:"max_delay" comment:"Longest pause before answering a failed login; pauses grow with each failure (successful logins never wait)."`
	// TrustedNetworks are never blocked by address.
	TrustedNetworks []string `toml:"trusted_networks" comment:"Client networks (\"192.0.2.10/32\", \"10.0.0.0/8\") never blocked by address: a webmail server or proxy that logs in for many users. Their failures still delay the next try at the same account."`
}

// TrustedPrefixes returns TrustedNetworks parsed (checked by Load); a
// bare address is a network of one.
func (a Auth) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range a.TrustedNetworks {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// Queue sets the retry schedule of outbound mail.
type Queue struct {
	MinBackoff   Duration `toml:"min_backoff" comment:"First retry after a temporary failure; each later retry waits twice as long."`
	MaxBackoff   Duration `toml:"max_backoff" comment:"Longest wait between two retries."`
	Lifetime     Duration `toml:"lifetime" comment:"Give up and return the message to its sender after this long."`
	DelayWarning Duration `toml:"delay_warning" comment:"Tell senders who asked (DSN NOTIFY=DELAY) that their message is delayed after this long."`
	Workers      int      `toml:"workers" comment:"Deliveries in progress at once."`
	PerDomain    int      `toml:"per_domain" comment:"Deliveries in progress at once to one recipient domain, so that a domain whose servers answer slowly cannot hold every worker."`
}

// IMAP limits the IMAP listeners (imap and imaps, each counted apart).
type IMAP struct {
	MaxConnections        int      `toml:"max_connections" comment:"Concurrent IMAP connections on one listener."`
	MaxConnectionsPerIP   int      `toml:"max_connections_per_ip" comment:"Concurrent IMAP connections from one client IP address (an office behind NAT is one address)."`
	MaxConnectionsPerUser int      `toml:"max_connections_per_user" comment:"Concurrent IMAP sessions of one account; the next login gets NO [LIMIT]."`
	IdleTimeout           Duration `toml:"idle_timeout" comment:"Autologout of an authenticated session with no command (RFC 9051 asks for at least 30 minutes)."`
	HeaderCache           Size     `toml:"header_cache" comment:"Memory for parsed message headers, shared by all sessions (ENVELOPE, header SEARCH)."`
}

// POP3 limits the POP3 listeners (pop3 and pop3s, each counted apart).
type POP3 struct {
	MaxConnections      int `toml:"max_connections" comment:"Concurrent POP3 connections on one listener."`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip" comment:"Concurrent POP3 connections from one client IP address."`
}

// Outbound configures delivery to other servers.
type Outbound struct {
	RelayHost      string   `toml:"relay_host" comment:"Send all outbound mail through this server (\"host:port\") instead of the recipients' MX hosts. Empty: use MX records."`
	Port           int      `toml:"port" comment:"Port of remote MX hosts. Only tests change it."`
	ConnectTimeout Duration `toml:"connect_timeout" comment:"Timeout to connect to one remote server."`
	CommandTimeout Duration `toml:"command_timeout" comment:"Longest wait for one reply of a remote server (RFC 5321 4.5.3.2 asks for 5 minutes); a silent server costs no more than this."`
}

// Log configures the structured log.
type Log struct {
	Level  string `toml:"level" comment:"Minimum level: debug, info, warn or error."`
	Format string `toml:"format" comment:"text (logfmt-like) or json."`
}

// Listen maps each service to the addresses it listens on.
type Listen struct {
	SMTP        []string `toml:"smtp" comment:"Inbound MTA (port 25): mail for our domains from other servers."`
	Submission  []string `toml:"submission" comment:"Message submission with STARTTLS (port 587)."`
	Submissions []string `toml:"submissions" comment:"Message submission over implicit TLS (port 465)."`
	IMAP        []string `toml:"imap" comment:"IMAP with STARTTLS (port 143)."`
	IMAPS       []string `toml:"imaps" comment:"IMAP over implicit TLS (port 993)."`
	POP3        []string `toml:"pop3" comment:"POP3 with STLS (port 110)."`
	POP3S       []string `toml:"pop3s" comment:"POP3 over implicit TLS (port 995)."`
	LMTP        []string `toml:"lmtp" comment:"LMTP for a front MTA (a TCP address or a unix socket path)."`
	ManageSieve []string `toml:"managesieve" comment:"ManageSieve (RFC 5804, port 4190): users upload Sieve filters; STARTTLS, then the same logins as IMAP."`
	HTTP        []string `toml:"http" comment:"HTTP: Prometheus metrics at /metrics and a health check at /healthz. Keep it on loopback or a private network."`
}

// TLS names the certificate. Both files are re-read on SIGHUP.
type TLS struct {
	CertFile string `toml:"cert_file" comment:"PEM certificate chain. Empty: no TLS (STARTTLS is not offered)."`
	KeyFile  string `toml:"key_file" comment:"PEM private key for cert_file."`
}

// DefaultMaxLineLength is smtp.max_line_length's default: 1 MiB, not
// RFC 5322's 998 octets. RFC 5321 §4.5.3.1 asks receivers to avoid such
// limits where they can, and real senders exceed 998 (HTML minified to
// one line): refusing them bounced mail that Postfix (which takes any
// length) accepts. Nothing here holds
// a line in memory, so the bound only keeps absurd input out of the
// readers downstream; the outbound client breaks lines over 998 octets
// when it relays (outbound.transact).
const DefaultMaxLineLength = 1 << 20

// SMTP holds the limits and timeouts of every SMTP listener.
type SMTP struct {
	MaxMessageSize      Size     `toml:"max_message_size" comment:"Largest message accepted (SIZE extension); larger ones get 552 5.3.4."`
	MaxRecipients       int      `toml:"max_recipients" comment:"Recipients per message; more get 452 4.5.3 (RFC 5321 requires at least 100)."`
	MaxLineLength       int      `toml:"max_line_length" comment:"Longest line in a message, without CRLF; longer gets 550 5.6.0. RFC 5322 says 998, but real mail has longer lines (minified HTML), which Postfix takes too; lines over 998 are broken when the message is relayed."`
	MaxHeaderSize       Size     `toml:"max_header_size" comment:"Largest header section of a message."`
	MaxHeaders          int      `toml:"max_headers" comment:"Most header fields in one message."`
	MaxReceived         int      `toml:"max_received" comment:"Most Received headers (hops) before a message is refused as a loop (554 5.4.6)."`
	MaxConnections      int      `toml:"max_connections" comment:"Concurrent SMTP connections of each kind: port 25, submission (587 and 465 together), LMTP, the local sendmail socket."`
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip" comment:"Concurrent SMTP connections from one client IP address."`
	MaxErrors           int      `toml:"max_errors" comment:"Protocol errors in one session before it is closed with 421."`
	CommandTimeout      Duration `toml:"command_timeout" comment:"How long to wait for the next command (RFC 5321 4.5.3.2 asks for 5 minutes)."`
	DataTimeout         Duration `toml:"data_timeout" comment:"Longest time to receive one whole message after 354 (RFC 5321 4.5.3.2: 10 minutes)."`
	ShutdownTimeout     Duration `toml:"shutdown_timeout" comment:"On SIGTERM, how long sessions may finish their message before being cut."`
}

// Delivery holds the policy for mail to our own users.
type Delivery struct {
	SubaddressSeparator string `toml:"subaddress_separator" comment:"Characters that start a sub-address: user+tag@domain reaches user@domain. Empty turns sub-addressing off."`
	Postmaster          string `toml:"postmaster" comment:"Address that receives mail for root, postmaster, abuse and hostmaster (at any of our domains and at hostname) when no alias or account has that name. Empty: the oldest account."`
	SendmailAnySender   bool   `toml:"sendmail_any_sender" comment:"Every local user of sendmail may set the envelope sender (-f), as with Postfix's default (web applications do); such mail carries an X-Authentication-Warning naming the user. false: only root and posthorn's own user may."`
}

// DNS names the resolvers used for MX and other lookups.
type DNS struct {
	Servers []string `toml:"servers" comment:"Resolver addresses (\"host:port\"). Empty: the nameservers in /etc/resolv.conf."`
	Timeout Duration `toml:"timeout" comment:"Timeout of one DNS query."`
}

// Store selects the storage backend.
type Store struct {
	Backend string `toml:"backend" comment:"local (SQLite index + Maildir under data_dir) or postgres."`
	DSN     string `toml:"dsn" comment:"PostgreSQL connection string, for backend = \"postgres\"."`
}

// Default returns the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		Hostname: "localhost",
		DataDir:  "data",
		Log:      Log{Level: "info", Format: "text"},
		SMTP: SMTP{
			MaxMessageSize:      50 << 20,
			MaxRecipients:       1000,
			MaxLineLength:       DefaultMaxLineLength,
			MaxHeaderSize:       1 << 20,
			MaxHeaders:          1000,
			MaxReceived:         50,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 50,
			MaxErrors:           20,
			CommandTimeout:      Duration(5 * time.Minute),
			DataTimeout:         Duration(10 * time.Minute),
			ShutdownTimeout:     Duration(30 * time.Second),
		},
		IMAP: IMAP{MaxConnections: 20000, MaxConnectionsPerIP: 200, MaxConnectionsPerUser: 50,
			IdleTimeout: Duration(30 * time.Minute), HeaderCache: 64 << 20},
		POP3:     POP3{MaxConnections: 1000, MaxConnectionsPerIP: 20},
		Delivery: Delivery{SubaddressSeparator: "+", SendmailAnySender: true},
		Auth: Auth{
			MaxFailures:   10,
			FailureWindow: Duration(15 * time.Minute),
			BlockTime:     Duration(15 * time.Minute),
			MaxDelay:      Duration(5 * time.Second),
		},
		Queue: Queue{
			MinBackoff:   Duration(5 * time.Minute),
			MaxBackoff:   Duration(time.Hour),
			Lifetime:     Duration(5 * 24 * time.Hour),
			DelayWarning: Duration(4 * time.Hour),
			Workers:      16,
			PerDomain:    8,
		},
		Outbound: Outbound{Port: 25, ConnectTimeout: Duration(30 * time.Second), CommandTimeout: Duration(5 * time.Minute)},
		DNS:      DNS{Timeout: Duration(5 * time.Second)},
		Store:    Store{Backend: "local"},
		Unix: Unix{PasswdFile: "/etc/passwd", Mailbox: "mbox", SpoolDir: "/var/mail", MaildirName: "Maildir",
			Aliases: []string{"/etc/aliases"}, Forward: true, PipeTimeout: Duration(5 * time.Minute)},
	}
}
