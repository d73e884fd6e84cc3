package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// writeConfig writes doc to posthorn.toml in a fresh directory and returns
// its path.
func writeConfig(t testing.TB, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "posthorn.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// errorLines returns the lines of err with the config path cut from each.
func errorLines(err error, path string) []string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, path)
	}
	return lines
}

func TestLoadUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []string // error lines after the path
	}{
		{
			name: "top level",
			doc:  "hostname = \"mx.example.org\"\nhost_name = \"x\"\n",
			want: []string{`:2: unknown key "host_name" (did you mean "hostname"?)`},
		},
		{
			name: "in a table",
			doc: "# limits\n[smtp]\nmax_errors = 5\n\n" +
				"max_mesage_size = \"10MiB\"\n",
			want: []string{`:5: unknown key "smtp.max_mesage_size" (did you mean "smtp.max_message_size"?)`},
		},
		{
			name: "several",
			doc: "colour = \"blue\"\n[log]\nlevel = \"info\"\nformt = \"json\"\n" +
				"[store]\n  backend = \"local\"\n  pasword = \"x\"\n",
			want: []string{
				`:1: unknown key "colour"`,
				`:4: unknown key "log.formt" (did you mean "log.format"?)`,
				`:7: unknown key "store.pasword"`,
			},
		},
		{
			name: "misspelt table",
			doc:  "hostname = \"mx.example.org\"\n\n[smpt]\nmax_errors = 5\nmax_headers = 10\n",
			want: []string{`:3: unknown key "smpt" (did you mean "smtp"?)`},
		},
		{
			name: "unknown subtable",
			doc:  "[log]\nlevel = \"info\"\n[log.file]\npath = \"x\"\n",
			want: []string{`:3: unknown key "log.file"`},
		},
		{
			name: "dotted key",
			doc:  "hostname = \"mx.example.org\"\nsmtp.max_errors = 3\nsmtp.max_eror = 3\n",
			want: []string{`:3: unknown key "smtp.max_eror" (did you mean "smtp.max_errors"?)`},
		},
		{
			name: "dotted key in a table",
			doc:  "[smtp]\nmax_errors = 3\n\n[delivery]\nsieve.dir = \"x\"\n",
			want: []string{`:5: unknown key "delivery.sieve.dir"`},
		},
		{
			name: "quoted key",
			doc:  "[smtp]\n\"max errors\" = 3\n",
			want: []string{`:2: unknown key "smtp.\"max errors\"" (did you mean "smtp.max_errors"?)`},
		},
		{
			name: "literal quoted key",
			doc:  "[smtp]\n'max_errors' = 3\n'max.errors' = 3\n",
			want: []string{`:3: unknown key "smtp.\"max.errors\"" (did you mean "smtp.max_errors"?)`},
		},
		{
			name: "inline table",
			doc:  "hostname = \"mx.example.org\"\nsmtp = { max_errors = 3, retries = 2 }\n",
			want: []string{`:2: unknown key "smtp.retries"`},
		},
		{
			name: "array of tables",
			doc:  "[[relay]]\nhost = \"a\"\n[[relay]]\nhost = \"b\"\n",
			want: []string{`:1: unknown key "relay"`},
		},
		{
			name: "after a multi-line string",
			doc:  "[store]\ndsn = \"\"\"\n[smtp]\nbogus = 1\n\"\"\"\nbogus = 2\n",
			want: []string{`:6: unknown key "store.bogus"`},
		},
		{
			name: "wrong case",
			doc:  "Hostname = \"mx.example.org\"\n[SMTP]\nmax_errors = 3\n[log]\nLevel = \"info\"\n",
			want: []string{
				`:1: unknown key "Hostname" (did you mean "hostname"?)`,
				`:2: unknown key "SMTP" (did you mean "smtp"?)`,
				`:5: unknown key "log.Level" (did you mean "log.level"?)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, tt.doc)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if got := errorLines(err, path); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("error lines:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want string // prefix of the error after the path
	}{
		{
			name: "string for int",
			doc:  "[smtp]\nmax_errors = 5\nmax_recipients = \"ten\"\n",
			want: ":3: smtp.max_recipients: incompatible types",
		},
		{
			name: "int for string",
			doc:  "hostname = 7\n",
			want: ":1: hostname: incompatible types",
		},
		{
			name: "string for list",
			doc:  "\n[listen]\nsmtp = \":25\"\n",
			want: ":3: listen.smtp: incompatible types",
		},
		{
			name: "value for table",
			doc:  "log = \"debug\"\n",
			want: ":1: log: type mismatch",
		},
		{
			name: "int out of range",
			doc:  "[smtp]\nmax_errors = 99999999999999999999\n",
			want: ":2: smtp.max_errors: 99999999999999999999 is out of range",
		},
		{
			name: "bad size",
			doc:  "[smtp]\n\nmax_message_size = \"5XB\"\n",
			want: `:3: smtp.max_message_size: invalid size "5XB": unknown unit "XB"`,
		},
		{
			name: "negative size",
			doc:  "[smtp]\nmax_header_size = -1\n",
			want: ":2: smtp.max_header_size: invalid size -1: must not be negative",
		},
		{
			name: "fractional size",
			doc:  "[smtp]\nmax_header_size = 1.5\n",
			want: ":2: smtp.max_header_size: invalid size 1.5",
		},
		{
			name: "negative duration",
			doc:  "[dns]\ntimeout = \"-1s\"\n",
			want: `:2: dns.timeout: invalid duration "-1s": must not be negative`,
		},
		{
			name: "duration without unit",
			doc:  "[dns]\ntimeout = 5\n",
			want: ":2: dns.timeout: time: missing unit",
		},
		{
			name: "syntax",
			doc:  "hostname = \"mx.example.org\"\ndata_dir \"x\"\n",
			want: ":2: expected '.' or '='",
		},
		{
			name: "unterminated table",
			doc:  "[smtp\n",
			want: ":",
		},
		{
			name: "duplicate key",
			doc:  "[smtp]\nmax_errors = 1\nmax_errors = 2\n",
			want: ":3: smtp.max_errors: Key 'smtp.max_errors' has already been defined",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, tt.doc)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), path+tt.want) {
				t.Errorf("error = %q, want prefix %q", err, path+tt.want)
			}
		})
	}
}

func TestLoadParseErrorIsWrapped(t *testing.T) {
	t.Parallel()
	_, err := Load(writeConfig(t, "[smtp\n"))
	if _, ok := errors.AsType[toml.ParseError](err); !ok {
		t.Errorf("error %v does not wrap a toml.ParseError", err)
	}
}

func TestLoadValidationErrorsNameLines(t *testing.T) {
	t.Parallel()
	doc := `hostname = "mx.example.org"

[listen]
smtp = [":25"]
submission = [":25"]

[smtp]
max_errors = 0
`
	path := writeConfig(t, doc)
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	want := []string{
		`:5: listen.submission: ":25" is also listed in listen.smtp`,
		`:8: smtp.max_errors: must be at least 1, got 0`,
	}
	if got := errorLines(err, path); !reflect.DeepEqual(got, want) {
		t.Errorf("error lines:\n got %q\nwant %q", got, want)
	}
}

func TestLoadMissingKeyPointsAtItsTable(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "hostname = \"mx.example.org\"\n[tls]\ncert_file = \"cert.pem\"\n")
	_, err := Load(path)
	want := path + ":2: tls.key_file: must be set when tls.cert_file is"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestLineError(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	tests := []struct {
		err  *lineError
		want string
	}{
		{&lineError{file: "a.toml", line: 3, msg: "bad", err: cause}, "a.toml:3: bad"},
		{&lineError{file: "a.toml", msg: "bad", err: cause}, "a.toml: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, cause) {
			t.Errorf("%v does not wrap its cause", tt.err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadEmptyFileGivesDefaults(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "# nothing\n")
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DataDir = filepath.Join(filepath.Dir(path), "data")
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Load = %+v\nwant %+v", *got, want)
	}
}

func TestLoadResolvesPaths(t *testing.T) {
	t.Parallel()
	doc := `data_dir = "var/../mail"
[listen]
lmtp = ["./run/lmtp.sock", "/run/posthorn//lmtp.sock", "127.0.0.1:24"]
[tls]
cert_file = "tls/cert.pem"
key_file = "/etc/ssl/key.pem"
`
	path := writeConfig(t, doc)
	dir := filepath.Dir(path)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, got, want string
	}{
		{"data_dir", c.DataDir, filepath.Join(dir, "mail")},
		{"tls.cert_file", c.TLS.CertFile, filepath.Join(dir, "tls", "cert.pem")},
		{"tls.key_file", c.TLS.KeyFile, "/etc/ssl/key.pem"},
		{"listen.lmtp[0]", c.Listen.LMTP[0], filepath.Join(dir, "run", "lmtp.sock")},
		{"listen.lmtp[1]", c.Listen.LMTP[1], "/run/posthorn/lmtp.sock"},
		{"listen.lmtp[2]", c.Listen.LMTP[2], "127.0.0.1:24"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, tt.got, tt.want)
		}
	}
}

func TestLoadEmptyPathsStayEmpty(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, "[tls]\ncert_file = \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		t.Errorf("TLS = %+v, want empty paths", c.TLS)
	}
}

// TestLoadRelativeConfigPath changes directory, so it cannot run in parallel.
func TestLoadRelativeConfigPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("etc", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("etc", "posthorn.toml"), []byte("data_dir = \"spool\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join("etc", "posthorn.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "etc", "spool"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
}

func TestKeyLines(t *testing.T) {
	t.Parallel()
	doc := "\ufeffhostname = \"x\" # comment\n" + // 1
		"  # [commented] = 1\n" + // 2
		"[ smtp ]\n" + // 3
		"max_errors=1\n" + // 4
		"a . \"b.c\" . 'd' = 2\n" + // 5
		"s = '''\n" + // 6
		"[not.a.table]\n" + // 7
		"k = 1 '''\n" + // 8
		"after = 3\n" + // 9
		"[[ list.item ]] # x\n" + // 10
		"name = \"n\"\n" + // 11
		"arr = [\n" + // 12
		"  [1, 2],\n" + // 13
		"]\n" + // 14
		"one = \"\"\"same line\"\"\"\n" + // 15
		"two = 2\n" // 16
	want := map[string]int{
		"hostname":        1,
		"smtp":            3,
		"smtp.max_errors": 4,
		"smtp.a":          5,
		`smtp.a."b.c"`:    5,
		`smtp.a."b.c".d`:  5,
		"smtp.s":          6,
		"smtp.after":      9,
		"list":            10,
		"list.item":       10,
		"list.item.name":  11,
		"list.item.arr":   12,
		"list.item.one":   15,
		"list.item.two":   16,
		"list.item.not":   0, // inside a multi-line string
		"smtp.k":          0,
		"not.a.table":     0,
		"commented":       0,
	}
	lines := keyLines(doc)
	for key, line := range want {
		if got := lines[parseTestKey(t, key).String()]; got != line {
			t.Errorf("line of %s = %d, want %d", key, got, line)
		}
	}
	// lineOf falls back to the nearest parent that has a line.
	fallback := map[string]int{
		"list.item.name.other": 11,
		"smtp.k":               3,
		"nowhere.at.all":       0,
	}
	for key, line := range fallback {
		if got := lineOf(lines, parseTestKey(t, key)); got != line {
			t.Errorf("lineOf(%s) = %d, want %d", key, got, line)
		}
	}
}

// parseTestKey parses a dotted key the way a config file spells it.
func parseTestKey(t *testing.T, s string) toml.Key {
	t.Helper()
	k, rest, ok := parseKey(s)
	if !ok || rest != "" {
		t.Fatalf("bad test key %q", s)
	}
	return k
}

func TestSplitDecoderError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text     string
		line     int
		key, msg string
		ok       bool
	}{
		{`toml: line 7 (last key "smtp.max_errors"): bad`, 7, "smtp.max_errors", "bad", true},
		{`toml: (last key "a.\"b c\""): worse`, 0, `a."b c"`, "worse", true},
		{`toml: cannot decode`, 0, "", "", false},
		{`toml: line x (last key "a"): m`, 0, "", "", false},
		{`toml: line 3 (last key "a): m`, 0, "", "", false},
		{`other: line 3 (last key "a"): m`, 0, "", "", false},
	}
	for _, tt := range tests {
		line, key, msg, ok := splitDecoderError(tt.text)
		if line != tt.line || key != tt.key || msg != tt.msg || ok != tt.ok {
			t.Errorf("splitDecoderError(%q) = %d, %q, %q, %v; want %d, %q, %q, %v",
				tt.text, line, key, msg, ok, tt.line, tt.key, tt.msg, tt.ok)
		}
	}
}

func TestDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"smtp", "smtp", 0},
		{"smpt", "smtp", 1},
		{"max_mesage_size", "max_message_size", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// FuzzLoad checks that no file makes Load or the key locator panic, and that
// every file Load accepts survives a round trip through Template.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(Template(Default())))
	// Inputs run one at a time in each process, so they can share files.
	dir := f.TempDir()
	path, tmpl := filepath.Join(dir, "posthorn.toml"), filepath.Join(dir, "template.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		keyLines(string(data))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			return
		}
		if err := os.WriteFile(tmpl, []byte(Template(*c)), 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := Load(tmpl)
		if err != nil {
			t.Fatalf("Load(Template(c)): %v", err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", again, c)
		}
	})
}
