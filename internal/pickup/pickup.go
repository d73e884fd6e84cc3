// Package pickup is the maildrop: where the sendmail command leaves mail
// when the daemon is not running, and where the daemon picks it up.
//
// The directory is world-writable and sticky (mode 1733, like Postfix's
// maildrop), not listable: any local user may drop a file, nobody can read
// another's. A file is written under a dot name, fsynced, renamed into
// place and the directory fsynced before sendmail exits 0. The daemon
// trusts a file's owner uid as it trusts a socket peer's, and only takes
// regular files with one link (no hard link to someone else's file).
//
// File format: the line "POSTHORN-DROP 1", then header lines "key value"
// with xtext-encoded values (RFC 3461 §4: no CR, LF or space can hide in
// them), an empty line, and the message with CRLF line ends.
package pickup

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const magic = "POSTHORN-DROP 1"

// maxHeader bounds the envelope part of a drop file.
const maxHeader = 256 << 10

// ErrFormat is returned for a file that is not a valid drop file.
var ErrFormat = errors.New("pickup: not a valid drop file")

// Envelope is what a drop file carries besides the message.
type Envelope struct {
	From   string // "" for the null sender
	Rcpts  []string
	Notify []string
	Ret    string
	EnvID  string
}

// Write stores a message durably in dir and returns the file name.
func Write(dir string, env Envelope, msg []byte) (string, error) {
	var b bytes.Buffer
	b.WriteString(magic + "\n")
	put := func(k, v string) { fmt.Fprintf(&b, "%s %s\n", k, xtext(v)) }
	put("from", env.From)
	for _, r := range env.Rcpts {
		put("rcpt", r)
	}
	if len(env.Notify) > 0 {
		put("notify", strings.Join(env.Notify, ","))
	}
	if env.Ret != "" {
		put("ret", env.Ret)
	}
	if env.EnvID != "" {
		put("envid", env.EnvID)
	}
	b.WriteString("\n")
	b.Write(msg)
	name := randomName()
	if err := writeSynced(dir, name, b.Bytes()); err != nil {
		return "", fmt.Errorf("pickup: %w", err)
	}
	return name, nil
}

func randomName() string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(r[:])
}

// writeSynced writes .name, fsyncs, renames to name and makes the rename
// durable. An error means the message is not in the maildrop: sendmail
// must not exit 0, and must not leave behind a file that the daemon would
// deliver after sendmail reported failure (the caller would send again).
func writeSynced(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	final := filepath.Join(dir, name)
	if err := syncRename(dir, final); err != nil {
		if rerr := os.Remove(final); errors.Is(rerr, fs.ErrNotExist) {
			return nil // the daemon has taken it already: it is the daemon's now
		}
		return err
	}
	return nil
}

// syncRename makes the entry of file in dir durable. The maildrop's owner
// fsyncs the directory; any other user may not open it (mode 1733: no
// read permission) and flushes the whole file system instead, through a
// descriptor of its own file (sendmail while the daemon is down is rare).
func syncRename(dir, file string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrPermission) {
		return syncFS(file)
	}
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Read parses a drop file. The message is returned as a reader over the
// rest of r.
func Read(r io.Reader) (Envelope, io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var env Envelope
	line, err := readLine(br)
	if err != nil || line != magic {
		return env, nil, ErrFormat
	}
	n := len(line)
	for {
		line, err := readLine(br)
		if err != nil {
			return env, nil, ErrFormat
		}
		if n += len(line); n > maxHeader {
			return env, nil, ErrFormat
		}
		if line == "" {
			break
		}
		if err := env.set(line); err != nil {
			return env, nil, err
		}
	}
	if len(env.Rcpts) == 0 {
		return env, nil, fmt.Errorf("%w: no recipients", ErrFormat)
	}
	return env, br, nil
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return string(line[:len(line)-1]), nil
}

func (e *Envelope) set(line string) error {
	k, enc, ok := strings.Cut(line, " ")
	if !ok {
		return ErrFormat
	}
	v, err := unxtext(enc)
	if err != nil {
		return ErrFormat
	}
	switch k {
	case "from":
		e.From = v
	case "rcpt":
		e.Rcpts = append(e.Rcpts, v)
	case "notify":
		e.Notify = strings.Split(v, ",")
	case "ret":
		e.Ret = v
	case "envid":
		e.EnvID = v
	default:
		return fmt.Errorf("%w: unknown field %q", ErrFormat, k)
	}
	return nil
}

// xtext encodes everything outside "!".."~" except "+" and "=" as +XX.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unxtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '+' {
			if c < '!' || c > '~' || c == '=' {
				return "", ErrFormat
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", ErrFormat
		}
		var v byte
		if _, err := fmt.Sscanf(s[i+1:i+3], "%02X", &v); err != nil {
			return "", ErrFormat
		}
		if v == '\r' || v == '\n' || v == 0 {
			return "", ErrFormat // no line ends or NUL in any field
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}
