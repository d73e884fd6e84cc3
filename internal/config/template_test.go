package config

import (
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// structKey is one key of Config found by walking its type.
type structKey struct {
	path    []string
	comment string
	table   bool
}

// structKeys walks struct type t, independently of the package code, and
// returns every key in it, tables included, with prefix before each path.
func structKeys(t reflect.Type, prefix []string) []structKey {
	var keys []structKey
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		path := append(prefix[:len(prefix):len(prefix)], name)
		table := f.Type.Kind() == reflect.Struct
		keys = append(keys, structKey{path: path, comment: f.Tag.Get("comment"), table: table})
		if table {
			keys = append(keys, structKeys(f.Type, path)...)
		}
	}
	return keys
}

// busyConfig returns a valid, normalised Config with no default left: every
// list is set and strings need escaping.
func busyConfig() Config {
	c := Default()
	c.Hostname = "mx1.example.org"
	c.DataDir = "/var/lib/posthorn"
	c.Log = Log{Level: "debug", Format: "json"}
	for i, s := range Services {
		port := strconv.Itoa(i+1) + "0"
		_ = c.Listen.Set(s, []string{"127.0.0.1:" + port, "[::1]:" + port})
	}
	c.Listen.LMTP = []string{"/run/posthorn/lmtp.sock", "[::1]:24"}
	c.TLS = TLS{CertFile: "/etc/posthorn/cert.pem", KeyFile: "/etc/posthorn/key \"quoted\".pem"}
	c.SMTP.MaxMessageSize = 1536 << 10
	c.SMTP.MaxHeaderSize = 100_000
	c.SMTP.MaxRecipients = 1
	c.SMTP.CommandTimeout = Duration(90 * time.Minute)
	c.SMTP.DataTimeout = Duration(250 * time.Millisecond)
	c.Delivery.SubaddressSeparator = "+-＋"
	c.DNS = DNS{Servers: []string{"192.0.2.53:53", "[2001:db8::53]:5353"}, Timeout: Duration(1500 * time.Millisecond)}
	c.Store = Store{Backend: "postgres", DSN: "host=db user=mail password='p\"w\\\\x\t\x01' sslmode=verify-full\nü"}
	return c
}

func TestTemplateRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Config
	}{
		{"default", Default()},
		{"busy", busyConfig()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, Template(tt.c))
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load(Template(c)): %v\n%s", err, Template(tt.c))
			}
			want := tt.c
			if err := want.resolvePaths(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Load(Template(c)) =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

func TestTemplateHasEveryKey(t *testing.T) {
	t.Parallel()
	text := Template(Default())
	var m map[string]any
	md, err := toml.Decode(text, &m)
	if err != nil {
		t.Fatalf("template is not valid TOML: %v", err)
	}
	for _, k := range structKeys(reflect.TypeFor[Config](), nil) {
		if !md.IsDefined(k.path...) {
			t.Errorf("key %s is missing", strings.Join(k.path, "."))
		}
		if k.table && !strings.Contains(text, "\n["+strings.Join(k.path, ".")+"]\n") {
			t.Errorf("table %s has no [header]", strings.Join(k.path, "."))
		}
		if flat := flatComments(text); !strings.Contains(flat, k.comment) {
			t.Errorf("comment of %s is missing: %q", strings.Join(k.path, "."), k.comment)
		}
	}
}

// flatComments returns the comment text of a TOML file with the line breaks
// of wrapping undone.
func flatComments(text string) string {
	var words []string
	for line := range strings.Lines(text) {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "#"); ok {
			words = append(words, strings.Fields(c)...)
		}
	}
	return strings.Join(words, " ")
}

func TestTemplateLayout(t *testing.T) {
	t.Parallel()
	text := Template(Default())
	tests := []struct {
		name, want string
	}{
		{"header", "# posthorn configuration, written by `posthorn init`.\n"},
		{"default note", "Every option is shown with its default value"},
		{"size as string", "\nmax_message_size = \"50MiB\"\n"},
		{"duration as string", "\ncommand_timeout = \"5m\"\n"},
		{"int plain", "\nmax_recipients = 1000\n"},
		{"empty list", "\nimap = []\n"},
		{"blank line before table", "\n\n[smtp]\n"},
		{"comment above key", "# Timeout of one DNS query.\ntimeout = \"5s\"\n"},
	}
	for _, tt := range tests {
		if !strings.Contains(text, tt.want) {
			t.Errorf("%s: template lacks %q", tt.name, tt.want)
		}
	}
	if first := strings.Index(text, "\n["); first < strings.Index(text, "\ndata_dir =") {
		t.Error("a table comes before the top-level keys")
	}
	for line := range strings.Lines(text) {
		if len(strings.TrimSuffix(line, "\n")) > commentWidth && strings.HasPrefix(line, "#") {
			t.Errorf("comment line longer than %d: %q", commentWidth, line)
		}
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := []string{
		"", "plain", `back\slash`, `"quotes"`, "tab\there", "new\nline\r\n",
		"\x00\x01\x1f\x7f", "ünïcödé ✉", "\u0085 next line", `'single'`, `\u0041`,
	}
	for _, s := range tests {
		var got struct{ V string }
		if _, err := toml.Decode("V = "+quote(s), &got); err != nil {
			t.Errorf("quote(%q) = %s: %v", s, quote(s), err)
			continue
		}
		if got.V != s {
			t.Errorf("quote(%q) decodes to %q", s, got.V)
		}
	}
}
