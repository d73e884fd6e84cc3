package mua

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxName is the longest file name most file systems take, in bytes.
const maxName = 255

// SafeFilename turns a file name from a message into one that is safe to
// create in a directory: no directory part (of either slash), no control
// or bidirectional-override characters, no leading dots (hidden files,
// "..") and no trailing dots or spaces, at most 255 bytes with the
// extension kept. It returns "" when nothing usable is left.
func SafeFilename(name string) string {
	name = strings.TrimRight(strings.ReplaceAll(name, "\\", "/"), "/")
	name = name[strings.LastIndexByte(name, '/')+1:]
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		switch {
		case Unsafe(r):
			return -1
		case r == '/' || r == ':':
			return '_'
		}
		return r
	}, name)
	name = strings.TrimFunc(name, trimmable)
	if len(name) <= maxName {
		return name
	}
	ext := filepath.Ext(name)
	if len(ext) > 16 || !utf8.ValidString(ext) {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	for len(stem)+len(ext) > maxName {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	return strings.TrimRightFunc(stem, trimmable) + ext
}

// trimmable: white space and dots at the ends of a name hide it, or
// make it look like another.
func trimmable(r rune) bool { return r == '.' || unicode.IsSpace(r) }

// SaveAttachments writes every attachment of m into dir (created if need
// be) under its SafeFilename, or "attachment-N.ext" when it has none. A
// name that exists already gets " (1)", " (2)"... before its extension:
// nothing is overwritten, and files are created inside dir only (through
// os.Root, which refuses any path that leaves it). Each Part's Saved is
// set to the path written.
func SaveAttachments(m *Message, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save attachments: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("save attachments: %w", err)
	}
	defer root.Close()
	for i := range m.Attachments {
		p := &m.Attachments[i]
		name := SafeFilename(p.Filename)
		if name == "" {
			name = fmt.Sprintf("attachment-%d%s", p.Index, extensionFor(p.ContentType))
		}
		saved, err := createUnique(root, name, p.Data)
		if err != nil {
			return fmt.Errorf("save attachment %d: %w", p.Index, err)
		}
		p.Saved = filepath.Join(dir, saved)
	}
	return nil
}

func extensionFor(ctype string) string {
	mt, _, _ := mime.ParseMediaType(ctype)
	switch mt {
	case "text/plain":
		return ".txt"
	case "message/rfc822":
		return ".eml"
	}
	if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 {
		return exts[0]
	}
	return ".bin"
}

// createUnique creates name in root, or the first free "stem (n).ext".
func createUnique(root *os.Root, name string, data []byte) (string, error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for n := 0; n < 1000; n++ {
		try := name
		if n > 0 {
			try = fmt.Sprintf("%s (%d)%s", stem, n, ext)
		}
		// O_EXCL: an existing file, or a symbolic link planted there, is
		// never written through.
		f, err := root.OpenFile(try, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return "", err
		}
		return try, f.Close()
	}
	return "", fmt.Errorf("%s: 1000 files of that name exist", name)
}
