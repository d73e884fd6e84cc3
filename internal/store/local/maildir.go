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
//
// The file is read back by crlfReader, whose rule is fixed: every LF not
// preceded by a CR in the file reads as CRLF, every other octet as itself.
// That rule cannot change: the old writer (which dropped the CR of every
// CRLF) could produce any octet sequence, so every file already means what
// crlfReader makes of it. The writer is therefore made its inverse:
//
//   - The CR of a CRLF is dropped, unless the octet written before it is a
//     CR: "\r\r\n" stored as "\r\n" would read back as "\r\n", one CR
//     short (the old writer did that), so such a CRLF is stored as it is.
//     The octet before a CRLF's CR is never a dropped CR (that one is
//     followed by LF), so "written before" and "sent before" agree, and
//     runs like "\r\r\r\n" come out whole.
//   - Every other octet is stored as it is, a CR at the end included.
//
// Read back, a message is then octet for octet what was written, except
// that a bare LF (one without a CR before it) reads as CRLF: no file can
// hold a bare LF that crlfReader returns bare. RFC 5322 §2.3 forbids bare
// LF in a message, our SMTP server refuses one (RFC 5321 §2.3.8), and an
// IMAP APPEND literal that has one (the IMAP server passes literals on as
// they came) gets it as CRLF, counted so in the size: the size and the
// content served always agree.
//
// n counts the octets written and bare the LFs that crlfReader will expand,
// so the CRLF size is n + bare, with no second pass over the file.
type lfWriter struct {
	w    *bufio.Writer
	cr   bool // a CR is held back: it may start a CRLF
	last byte // the octet last written to the file
	n    int64
	bare int64
}

func (l *lfWriter) Write(p []byte) (int, error) {
	total := len(p)
	if l.cr && len(p) > 0 {
		l.cr = false
		l.carriage(p[0])
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
		l.carriage(p[i+1])
		p = p[i+1:] // the octet after the CR starts the next run
	}
	return total, nil
}

// carriage writes a CR that next follows, or drops it when it is the CR
// of a CRLF that may be stored as LF.
func (l *lfWriter) carriage(next byte) {
	if next != '\n' || l.last == '\r' {
		l.put(cr)
	}
}

var cr = []byte{'\r'}

// put writes b, which is either a run holding no CR or the single cr:
// so the only LF in it that can follow a CR is its first octet.
func (l *lfWriter) put(b []byte) {
	if len(b) == 0 {
		return
	}
	_, _ = l.w.Write(b) // errors surface at Flush
	l.n += int64(len(b))
	l.bare += int64(bytes.Count(b, lf))
	if b[0] == '\n' && l.last == '\r' {
		l.bare-- // a stored CRLF: read as it is
	}
	l.last = b[len(b)-1]
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
