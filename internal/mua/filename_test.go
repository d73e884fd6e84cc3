package mua

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeFilename(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200) + ".pdf" // 404 bytes
	for _, c := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"résumé €.pdf", "résumé €.pdf"},
		{"../../etc/passwd", "passwd"},
		{"/etc/shadow", "shadow"},
		{`..\..\windows\system.ini`, "system.ini"},
		{`C:\Users\x\doc.txt`, "doc.txt"},
		{"dir/", "dir"},
		{"..", ""},
		{".", ""},
		{"", ""},
		{"...", ""},
		{".bashrc", "bashrc"},
		{" spaced. ", "spaced"},
		{"nul\x00byte\x1b[31m.txt", "nulbyte[31m.txt"},
		{"\u202etxt.exe", "txt.exe"},
		{"a:b.txt", "a_b.txt"},
		{"bad\xffutf8.txt", "badutf8.txt"},
	} {
		if got := SafeFilename(c.in); got != c.want {
			t.Errorf("SafeFilename(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := SafeFilename(long)
	if len(got) > 255 || !strings.HasSuffix(got, ".pdf") || !utf8.ValidString(got) {
		t.Errorf("SafeFilename(long) = %q (%d bytes)", got, len(got))
	}
}

func TestSaveAttachmentsStaysInDirAndNeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "target")
	// A planted symbolic link must not be written through.
	if err := os.Symlink(outside, filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Message{Attachments: []Part{
		{Index: 1, Filename: "../../a.txt", Data: []byte("one")},
		{Index: 2, Filename: "a.txt", Data: []byte("two")},
		{Index: 3, Filename: "link.txt", Data: []byte("three")},
		{Index: 4, Filename: "..", ContentType: "application/pdf", Data: []byte("four")},
		{Index: 5, Filename: "", ContentType: "text/plain; charset=utf-8", Data: []byte("five")},
	}}
	if err := SaveAttachments(m, dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"a (1).txt", "a (2).txt", "link (1).txt", "attachment-4.pdf", "attachment-5.txt"}
	for i, w := range want {
		p := m.Attachments[i]
		if p.Saved != filepath.Join(dir, w) {
			t.Errorf("attachment %d saved as %q, want %q", p.Index, p.Saved, w)
			continue
		}
		if b, err := os.ReadFile(p.Saved); err != nil || string(b) != string(p.Data) {
			t.Errorf("%s holds %q (%v)", w, b, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "mine" {
		t.Errorf("an existing file was overwritten: %q", b)
	}
	if _, err := os.Lstat(outside); err == nil {
		t.Error("wrote through a symbolic link")
	}
}
