package mua

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// Every string below comes from a message: it goes through Printable
// before it reaches a terminal.

// WriteListHeader writes the column titles of WriteSummary lines.
func WriteListHeader(w io.Writer) {
	fmt.Fprintf(w, "%6s %-4s %-16s  %-24s  %s\n", "UID", "FLAG", "DATE", "FROM", "SUBJECT")
}

// WriteSummary writes one listing line: UID, flags (N new, F flagged,
// R replied, D deleted, @ attachment), date, sender, subject.
func WriteSummary(w io.Writer, s Summary) {
	has := func(f imap.Flag) bool { return slices.Contains(s.Flags, string(f)) }
	flags := []byte("    ")
	switch {
	case has(imap.FlagDeleted):
		flags[0] = 'D'
	case !s.Seen():
		flags[0] = 'N'
	}
	if has(imap.FlagFlagged) {
		flags[1] = 'F'
	}
	if has(imap.FlagAnswered) {
		flags[2] = 'R'
	}
	if s.Attachment {
		flags[3] = '@'
	}
	date := ""
	if !s.Date.IsZero() {
		date = s.Date.Local().Format("2006-01-02 15:04")
	}
	from := ""
	if len(s.From) > 0 {
		from = s.From[0].Name
		if from == "" {
			from = s.From[0].Addr
		}
	}
	fmt.Fprintf(w, "%6d %-4s %-16s  %s  %s\n", s.UID, flags, date, pad(oneLine(Printable(from)), 24), oneLine(Printable(s.Subject)))
}

// pad cuts or fills s to n columns (runes; wide characters count one).
func pad(s string, n int) string {
	if c := utf8.RuneCountInString(s); c <= n {
		return s + strings.Repeat(" ", n-c)
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// WriteMessage writes a message for reading: the main header fields, the
// text, the attachments and any decoding notes.
func WriteMessage(w io.Writer, m *Message) {
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "%s: %s\n", name, oneLine(Printable(value)))
		}
	}
	field("From", joinAddrs(m.From))
	field("To", joinAddrs(m.To))
	field("Cc", joinAddrs(m.Cc))
	if len(m.ReplyTo) > 0 {
		field("Reply-To", joinAddrs(m.ReplyTo))
	}
	if !m.Date.IsZero() {
		field("Date", m.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	field("Subject", m.Subject)
	if m.UID != 0 {
		fmt.Fprintf(w, "[%s UID %d %s]\n", Printable(m.Folder), m.UID, strings.Join(m.Flags, " "))
	}
	fmt.Fprintln(w)
	text := Printable(m.Text)
	if m.TextType == "text/html" {
		fmt.Fprintln(w, "[text of an HTML message]")
	}
	fmt.Fprint(w, text)
	if text != "" && !strings.HasSuffix(text, "\n") {
		fmt.Fprintln(w)
	}
	if len(m.Attachments) > 0 {
		fmt.Fprintln(w, "\nAttachments:")
		for _, a := range m.Attachments {
			name := a.Filename
			if name == "" {
				name = "(no name)"
			}
			fmt.Fprintf(w, "  %d. %s  %s  %s", a.Index, oneLine(Printable(name)), Printable(a.ContentType), HumanSize(int64(a.Size)))
			if a.Saved != "" {
				fmt.Fprintf(w, "  saved as %s", Printable(a.Saved))
			}
			fmt.Fprintln(w)
		}
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, "note: %s\n", oneLine(Printable(n)))
	}
}

func joinAddrs(as []Address) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return strings.Join(out, ", ")
}

// WriteFolders writes one line per folder: name, special use, counts.
func WriteFolders(w io.Writer, fs []Folder) {
	width := 10
	for _, f := range fs {
		width = max(width, utf8.RuneCountInString(f.Name))
	}
	for _, f := range fs {
		line := fmt.Sprintf("%s  %-9s", pad(Printable(f.Name), width), f.SpecialUse)
		if f.Messages != nil {
			line += fmt.Sprintf(" %6d messages", *f.Messages)
		}
		if f.Unseen != nil && *f.Unseen > 0 {
			line += fmt.Sprintf(", %d unseen", *f.Unseen)
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// HumanSize is n in B, KiB or MiB.
func HumanSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
