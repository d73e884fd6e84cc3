package local

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"posthorn/internal/store"
)

// Maildir++ layout (https://cr.yp.to/proto/maildir.html, Courier's
// Maildir++): INBOX is the account directory itself, folder "A/B" is the
// sub-directory ".A.B". Each has tmp/, new/ and cur/.

var subdirs = [...]string{"tmp", "new", "cur"}

// accountPath returns the Maildir of an account, relative to DATA/mail:
// "<domain>/<local>", with the local part encoded so that no address can
// name a path outside (no "/", no leading ".", no "..", ASCII only).
func accountPath(address string) (string, error) {
	i := strings.LastIndexByte(address, '@')
	if i <= 0 || i == len(address)-1 {
		return "", fmt.Errorf("bad address %q", address)
	}
	local, domain := address[:i], address[i+1:]
	if strings.ContainsAny(domain, "/\\") || domain[0] == '.' || strings.Contains(domain, "..") {
		return "", fmt.Errorf("bad domain %q", domain)
	}
	return domain + "/" + encodeName(local), nil
}

// encodeName keeps [A-Za-z0-9-_+=] and single inner dots, and writes
// every other byte as %XX. (Local parts arrive lower-cased already; folder
// names keep their case, as IMAP mailbox names are case-sensitive.)
func encodeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '+', c == '=':
			b.WriteByte(c)
		case c == '.' && i > 0 && s[i-1] != '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// folderDir returns the directory of a mailbox inside an account's
// Maildir. "/" separates levels; a "." inside a name is written %2E, since
// "." is Maildir++'s own separator.
func folderDir(name string) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return "", nil
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if p == "" || p == "." || p == ".." {
			return "", fmt.Errorf("%w: %q", store.ErrBadName, name)
		}
		parts[i] = strings.ReplaceAll(encodeName(p), ".", "%2E")
	}
	dir := "." + strings.Join(parts, ".")
	if len(dir) > maxDirName {
		return "", fmt.Errorf("%w: name too long", store.ErrBadName)
	}
	return dir, nil
}

// maxDirName is NAME_MAX on Linux file systems: a Maildir++ folder is one
// directory, so its whole hierarchy name, encoded, must fit in it.
const maxDirName = 255

// makeMaildir creates dir with tmp/, new/ and cur/ (mode 0700). For a
// folder it adds the "maildirfolder" marker of Maildir++.
func makeMaildir(dir string, folder bool) error {
	for _, sd := range subdirs {
		if err := os.MkdirAll(filepath.Join(dir, sd), 0o700); err != nil {
			return err
		}
	}
	if folder {
		f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return nil
}

// nameSource makes unique Maildir file names: "sec.M<usec>P<pid>Q<n>.host".
type nameSource struct {
	pid  int
	host string
	seq  atomic.Uint64
}

func newNameSource(host string) nameSource {
	if host == "" {
		host, _ = os.Hostname()
	}
	// Maildir: "/" and ":" in the host name are written as octal escapes.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return nameSource{pid: os.Getpid(), host: host}
}

func (n *nameSource) next() string {
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, n.pid, n.seq.Add(1), n.host)
}

// Maildir info flags (the ":2," suffix) for IMAP system flags, in the
// ASCII order the Maildir spec requires.
var flagLetters = []struct {
	letter byte
	flag   string
}{
	{'D', `\Draft`}, {'F', `\Flagged`}, {'R', `\Answered`}, {'S', `\Seen`}, {'T', `\Deleted`},
}

// infoSuffix returns ":2,<letters>" for flags.
func infoSuffix(flags []string) string {
	var b strings.Builder
	b.WriteString(":2,")
	for _, fl := range flagLetters {
		for _, f := range flags {
			if strings.EqualFold(f, fl.flag) {
				b.WriteByte(fl.letter)
				break
			}
		}
	}
	return b.String()
}

// parseInfo returns the system flags of a file name's info suffix.
func parseInfo(name string) []string {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		return nil
	}
	var flags []string
	for _, fl := range flagLetters {
		if strings.IndexByte(name[i+3:], fl.letter) >= 0 {
			flags = append(flags, fl.flag)
		}
	}
	return flags
}

// baseName is the unique part of a file name: everything before ":".
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// vsizeFromName reads the W= (CRLF size) field Dovecot and we put in names.
func vsizeFromName(name string) (int64, bool) {
	for _, f := range strings.Split(baseName(name), ",")[1:] {
		if v, ok := strings.CutPrefix(f, "W="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// lfWriter turns CRLF into LF on the way to disk and counts what it writes.
// lines counts LFs, so the CRLF size is n + lines.
type lfWriter struct {
	w     *bufio.Writer
	cr    bool // a CR is held back: it may start a CRLF
	n     int64
	lines int64
}

func (l *lfWriter) Write(p []byte) (int, error) {
	total := len(p)
	if l.cr && len(p) > 0 {
		l.cr = false
		if p[0] != '\n' {
			l.put(cr) // a lone CR is data
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			l.put(p)
			break
		}
		l.put(p[:i])
		if i+1 == len(p) {
			l.cr = true // held back: it may start a CRLF
			break
		}
		if p[i+1] != '\n' {
			l.put(cr)
		}
		p = p[i+1:] // a CRLF's LF starts the next run
	}
	return total, nil
}

var cr = []byte{'\r'}

func (l *lfWriter) put(b []byte) {
	_, _ = l.w.Write(b) // errors surface at Flush
	l.n += int64(len(b))
	l.lines += int64(bytes.Count(b, lf))
}

var lf = []byte{'\n'}

// flush writes a trailing held-back CR and flushes.
func (l *lfWriter) flush() error {
	if l.cr {
		l.put(cr)
		l.cr = false
	}
	return l.w.Flush()
}

// scanned is one message file found in a Maildir.
type scanned struct {
	file  string // "new/…" or "cur/…"
	base  string
	flags []string
}

// cleanTmp removes files left in tmp/ for over 36 hours (the Maildir
// spec's rule): deliveries that crashed before their rename.
func cleanTmp(dir string) {
	tmp := filepath.Join(dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 36*time.Hour {
			_ = os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
}

// countVsize reads a file and returns its size with each bare LF counted
// as CRLF (files dropped in by other programs may already have CRLF).
func countVsize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	var prev byte
	buf := make([]byte, 64<<10)
	for {
		m, err := f.Read(buf)
		for _, c := range buf[:m] {
			n++
			if c == '\n' && prev != '\r' {
				n++
			}
			prev = c
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }
