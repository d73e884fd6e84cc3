package config

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*Config)
		key     string // dotted key the error must name
		wantErr string // substring of the error
	}{
		{"empty hostname", func(c *Config) { c.Hostname = "" }, "hostname", "must not be empty"},
		{"hostname underscore", func(c *Config) { c.Hostname = "mx_1.example.org" }, "hostname", "letters, digits and hyphens"},
		{"hostname empty label", func(c *Config) { c.Hostname = "mx..example.org" }, "hostname", "1 to 63"},
		{"hostname trailing dot", func(c *Config) { c.Hostname = "mx.example.org." }, "hostname", "1 to 63"},
		{"hostname hyphen", func(c *Config) { c.Hostname = "-mx.example.org" }, "hostname", "hyphen"},
		{"hostname long label", func(c *Config) { c.Hostname = strings.Repeat("a", 64) + ".org" }, "hostname", "1 to 63"},
		{"hostname too long", func(c *Config) { c.Hostname = strings.Repeat("abcdefghi.", 26) + "org" }, "hostname", "253"},
		{"hostname unicode", func(c *Config) { c.Hostname = "mäil.example.org" }, "hostname", "letters, digits"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", `"verbose"`},
		{"log level case", func(c *Config) { c.Log.Level = "INFO" }, "log.level", `"INFO"`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", `"xml"`},
		{"listen no port", func(c *Config) { c.Listen.SMTP = []string{"127.0.0.1"} }, "listen.smtp", "missing port"},
		{"listen bad port", func(c *Config) { c.Listen.IMAP = []string{":imap"} }, "listen.imap", "not a number"},
		{"listen port too big", func(c *Config) { c.Listen.IMAP = []string{":65536"} }, "listen.imap", "0 to 65535"},
		{"listen negative port", func(c *Config) { c.Listen.IMAP = []string{":-1"} }, "listen.imap", "0 to 65535"},
		{"listen bare IPv6", func(c *Config) { c.Listen.HTTP = []string{"::1:80"} }, "listen.http", "too many colons"},
		{"listen bad host", func(c *Config) { c.Listen.POP3 = []string{"bad host:110"} }, "listen.pop3", "not an IP address"},
		{"listen socket not lmtp", func(c *Config) { c.Listen.SMTP = []string{"/run/smtp.sock"} }, "listen.smtp", "only lmtp"},
		{"lmtp relative socket", func(c *Config) { c.Listen.LMTP = []string{"run/lmtp.sock"} }, "listen.lmtp", "must be absolute"},
		{"duplicate across services", func(c *Config) {
			c.Listen.SMTP = []string{"127.0.0.1:25"}
			c.Listen.Submission = []string{"127.0.0.1:025"}
		}, "listen.submission", "also listed in listen.smtp"},
		{"duplicate in one service", func(c *Config) { c.Listen.IMAP = []string{"[::1]:143", "[::1]:143"} }, "listen.imap", "also listed"},
		{"duplicate socket", func(c *Config) { c.Listen.LMTP = []string{"/run/l.sock", "/run//l.sock"} }, "listen.lmtp", "also listed"},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "/c.pem" }, "tls.key_file", "must be set"},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "/k.pem" }, "tls.cert_file", "must be set"},
		{"message size", func(c *Config) { c.SMTP.MaxMessageSize = 1023 }, "smtp.max_message_size", "at least 1KiB, got 1023"},
		{"header size", func(c *Config) { c.SMTP.MaxHeaderSize = 0 }, "smtp.max_header_size", "at least 1KiB"},
		{"recipients", func(c *Config) { c.SMTP.MaxRecipients = 0 }, "smtp.max_recipients", "at least 1"},
		{"line length", func(c *Config) { c.SMTP.MaxLineLength = 77 }, "smtp.max_line_length", "at least 78"},
		{"headers", func(c *Config) { c.SMTP.MaxHeaders = 0 }, "smtp.max_headers", "at least 1"},
		{"received", func(c *Config) { c.SMTP.MaxReceived = -1 }, "smtp.max_received", "at least 1"},
		{"connections", func(c *Config) { c.SMTP.MaxConnections = 0 }, "smtp.max_connections", "at least 1"},
		{"connections per ip", func(c *Config) { c.SMTP.MaxConnectionsPerIP = 0 }, "smtp.max_connections_per_ip", "at least 1"},
		{"errors", func(c *Config) { c.SMTP.MaxErrors = 0 }, "smtp.max_errors", "at least 1"},
		{"imap per user", func(c *Config) { c.IMAP.MaxConnectionsPerUser = 0 }, "imap.max_connections_per_user", "at least 1"},
		{"imap autologout", func(c *Config) { c.IMAP.IdleTimeout = Duration(29 * time.Minute) }, "imap.idle_timeout", "at least 30m"},
		{"imap header cache", func(c *Config) { c.IMAP.HeaderCache = 1000 }, "imap.header_cache", "at least 1MiB"},
		{"pop3 per ip", func(c *Config) { c.POP3.MaxConnectionsPerIP = 0 }, "pop3.max_connections_per_ip", "at least 1"},
		{"command timeout", func(c *Config) { c.SMTP.CommandTimeout = 0 }, "smtp.command_timeout", "positive"},
		{"data timeout", func(c *Config) { c.SMTP.DataTimeout = -1 }, "smtp.data_timeout", "positive"},
		{"shutdown timeout", func(c *Config) { c.SMTP.ShutdownTimeout = 0 }, "smtp.shutdown_timeout", "positive"},
		{"separator at", func(c *Config) { c.Delivery.SubaddressSeparator = "+@" }, "delivery.subaddress_separator", `'@'`},
		{"separator dot", func(c *Config) { c.Delivery.SubaddressSeparator = "." }, "delivery.subaddress_separator", `'.'`},
		{"separator quote", func(c *Config) { c.Delivery.SubaddressSeparator = `"` }, "delivery.subaddress_separator", `'"'`},
		{"separator space", func(c *Config) { c.Delivery.SubaddressSeparator = "+ " }, "delivery.subaddress_separator", `' '`},
		{"separator nbsp", func(c *Config) { c.Delivery.SubaddressSeparator = "\u00a0" }, "delivery.subaddress_separator", `'\u00a0'`},
		{"separator control", func(c *Config) { c.Delivery.SubaddressSeparator = "\x00" }, "delivery.subaddress_separator", `'\x00'`},
		{"separator bad utf-8", func(c *Config) { c.Delivery.SubaddressSeparator = "\xff" }, "delivery.subaddress_separator", "UTF-8"},
		{"dns empty", func(c *Config) { c.DNS.Servers = []string{""} }, "dns.servers", "not an IP address"},
		{"dns port zero", func(c *Config) { c.DNS.Servers = []string{"192.0.2.1:0"} }, "dns.servers", "1 to 65535"},
		{"dns bad port", func(c *Config) { c.DNS.Servers = []string{"192.0.2.1:dns"} }, "dns.servers", "1 to 65535"},
		{"dns bad host", func(c *Config) { c.DNS.Servers = []string{"a:b:c"} }, "dns.servers", "not an IP address"},
		{"dns bracketed v4", func(c *Config) { c.DNS.Servers = []string{"[192.0.2.1]"} }, "dns.servers", "bracketed IPv6"},
		{"dns timeout", func(c *Config) { c.DNS.Timeout = 0 }, "dns.timeout", "positive"},
		{"store backend", func(c *Config) { c.Store.Backend = "mysql" }, "store.backend", `"mysql"`},
		{"postgres without dsn", func(c *Config) { c.Store.Backend = "postgres" }, "store.dsn", "must be set"},
	}
	known := knownKeys()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !known[tt.key] {
				t.Fatalf("test names %q, which is not a key of Config", tt.key)
			}
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want %q then %q", err, tt.key+": ", tt.wantErr)
			}
			if ke, ok := errors.AsType[*keyError](err); !ok || ke.key != tt.key {
				t.Errorf("error %v is not a keyError for %s", err, tt.key)
			}
		})
	}
}

// knownKeys returns every dotted key of Config.
func knownKeys() map[string]bool {
	known := make(map[string]bool)
	for _, k := range structKeys(reflect.TypeFor[Config](), nil) {
		known[strings.Join(k.path, ".")] = true
	}
	return known
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"default", func(*Config) {}},
		{"busy", func(c *Config) { *c = busyConfig() }},
		{"single label hostname", func(c *Config) { c.Hostname = "mail" }},
		{"digits in hostname", func(c *Config) { c.Hostname = "1mx-2.example.org" }},
		{"63 character label", func(c *Config) { c.Hostname = strings.Repeat("a", 63) + ".org" }},
		{"all addresses", func(c *Config) { c.Listen.SMTP = []string{":25"} }},
		{"free port", func(c *Config) { c.Listen.SMTP = []string{"127.0.0.1:0"} }},
		{"top port", func(c *Config) { c.Listen.SMTP = []string{"127.0.0.1:65535"} }},
		{"IPv6", func(c *Config) { c.Listen.IMAPS = []string{"[::]:993", "[fe80::1%eth0]:993"} }},
		{"host name", func(c *Config) { c.Listen.HTTP = []string{"localhost:8080"} }},
		{"same port, other hosts", func(c *Config) { c.Listen.SMTP = []string{"127.0.0.1:25", "[::1]:25"} }},
		{"lmtp socket", func(c *Config) { c.Listen.LMTP = []string{"/run/posthorn/lmtp.sock"} }},
		{"tls pair", func(c *Config) { c.TLS = TLS{CertFile: "/c.pem", KeyFile: "/k.pem"} }},
		{"minimum limits", func(c *Config) {
			c.SMTP = SMTP{
				MaxMessageSize: 1024, MaxRecipients: 1, MaxLineLength: 78, MaxHeaderSize: 1024,
				MaxHeaders: 1, MaxReceived: 1, MaxConnections: 1, MaxConnectionsPerIP: 1, MaxErrors: 1,
				CommandTimeout: 1, DataTimeout: 1, ShutdownTimeout: 1,
			}
		}},
		{"no separator", func(c *Config) { c.Delivery.SubaddressSeparator = "" }},
		{"several separators", func(c *Config) { c.Delivery.SubaddressSeparator = "+-=" }},
		{"postgres", func(c *Config) { c.Store = Store{Backend: "postgres", DSN: "host=db"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Hostname = ""
	c.Log.Format = "xml"
	c.SMTP.MaxErrors = 0
	c.Store.Backend = "none"
	err := c.Validate()
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		ke, ok := errors.AsType[*keyError](e)
		if !ok {
			t.Fatalf("%v is not a keyError", e)
		}
		keys = append(keys, ke.key)
	}
	want := []string{"hostname", "log.format", "smtp.max_errors", "store.backend"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
}

func TestValidateNormalises(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Hostname = "MX.Example.ORG"
	c.Listen.SMTP = []string{}
	c.DNS.Servers = []string{
		"192.0.2.1", "192.0.2.2:5353", "2001:DB8::1", "[2001:db8::2]", "[2001:db8::3]:53",
		"NS.Example.org", "ns.example.org:053",
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mx.example.org" {
		t.Errorf("Hostname = %q, want it lower-cased", c.Hostname)
	}
	if c.Listen.SMTP != nil {
		t.Errorf("Listen.SMTP = %#v, want nil", c.Listen.SMTP)
	}
	want := []string{
		"192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:53", "[2001:db8::2]:53", "[2001:db8::3]:53",
		"ns.example.org:53", "ns.example.org:53",
	}
	if !slices.Equal(c.DNS.Servers, want) {
		t.Errorf("DNS.Servers = %q, want %q", c.DNS.Servers, want)
	}
	c.DNS.Servers = []string{}
	if err := c.Validate(); err != nil || c.DNS.Servers != nil {
		t.Errorf("empty DNS.Servers became %#v, %v; want nil", c.DNS.Servers, err)
	}
}

func TestListenAddrsSet(t *testing.T) {
	t.Parallel()
	var l Listen
	for i, s := range Services {
		addrs := []string{s + ".example.org:" + string(rune('0'+i))}
		if err := l.Set(s, addrs); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
		if got := l.Addrs(s); !slices.Equal(got, addrs) {
			t.Errorf("Addrs(%q) = %q, want %q", s, got, addrs)
		}
	}
	// Every field was reached once: each holds its own service's address.
	v := reflect.ValueOf(l)
	for f, fv := range v.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		got := fv.Interface().([]string)
		if len(got) != 1 || !strings.HasPrefix(got[0], name+".") {
			t.Errorf("field %s (toml %q) = %q, not set by its service", f.Name, name, got)
		}
	}
	if got := len(Services); got != v.NumField() {
		t.Errorf("%d Services for %d Listen fields", got, v.NumField())
	}
	if err := l.Set("gopher", nil); err == nil {
		t.Error("Set of an unknown service succeeded")
	}
	if got := l.Addrs("gopher"); got != nil {
		t.Errorf("Addrs of an unknown service = %q, want nil", got)
	}
}

// TestTrustedNetworks: [auth] trusted_networks takes addresses and
// networks (an address is a network of one; host bits are masked) and
// refuses anything else.
func TestTrustedNetworks(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Auth.TrustedNetworks = []string{"192.0.2.10", "10.1.2.3/8", "2001:db8::/32"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.Auth.TrustedPrefixes()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(got, want) {
		t.Errorf("TrustedPrefixes = %v, want %v", got, want)
	}
	for _, bad := range []string{"webmail.example.org", "10.0.0.0/33", ""} {
		c := Default()
		c.Auth.TrustedNetworks = []string{bad}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "auth.trusted_networks") {
			t.Errorf("%q: %v, want an auth.trusted_networks error", bad, err)
		}
	}
}
