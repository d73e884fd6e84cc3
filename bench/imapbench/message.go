package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Messages of realistic shape and size: plain text notes, HTML
// newsletters (multipart/alternative), messages with an attachment and a
// few large ones. Sizes (approximate, whole message):
//
//	55%  text/plain               1–10 KB
//	30%  multipart/alternative    10–60 KB
//	13%  with an attachment       30–250 KB
//	 2%  with a large attachment  0.4–1.5 MB
//
// The mean is about 40 KB, the median about 8 KB.

var syllables = []string{"ka", "lo", "mi", "ren", "to", "sa", "vel", "dor", "an", "pe", "qui", "mar",
	"tel", "is", "on", "bra", "cu", "fen", "ga", "ho", "jun", "lit", "nor", "ost", "pra", "ru", "sin", "tur"}

// vocabulary is a fixed list of pseudo-words (deterministic).
var vocabulary = func() []string {
	r := rand.New(rand.NewPCG(7, 7))
	seen := map[string]bool{}
	var out []string
	for len(out) < 600 {
		n := 1 + r.IntN(3)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(syllables[r.IntN(len(syllables))])
		}
		w := b.String()
		if len(w) < 3 || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}()

var firstNames = []string{"Alice", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
	"Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tamar"}
var lastNames = []string{"Berg", "Costa", "Dubois", "Eklund", "Fischer", "Garcia", "Haas", "Ivanova", "Jensen", "Kowalski"}
var domains = []string{"example.net", "example.org", "mail.example.com", "lists.example.net", "corp.example"}

// subjectWords returns the vocabulary words used by SEARCH SUBJECT.
func subjectWord(r *rand.Rand) string { return vocabulary[r.IntN(80)] }

func words(r *rand.Rand, n int) string {
	var b strings.Builder
	col := 0
	for i := 0; i < n; i++ {
		w := vocabulary[r.IntN(len(vocabulary))]
		if col+len(w)+1 > 72 {
			b.WriteString("\n")
			col = 0
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
		if r.IntN(12) == 0 {
			b.WriteString(".")
			col++
		}
	}
	b.WriteString("\n")
	return b.String()
}

// textOfSize returns prose of about size bytes.
func textOfSize(r *rand.Rand, size int) string {
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(words(r, 20+r.IntN(60)))
		b.WriteString("\n")
	}
	return b.String()
}

func logUniform(r *rand.Rand, lo, hi float64) int {
	// exp(uniform(log lo, log hi))
	a, b := math.Log(lo), math.Log(hi)
	return int(math.Exp(a + r.Float64()*(b-a)))
}

// makeMessage returns message number i (LF line ends) addressed to to.
func makeMessage(r *rand.Rand, i int, to string, date time.Time) []byte {
	var b bytes.Buffer
	fn, ln := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	from := fmt.Sprintf("%s %s <%s.%s@%s>", fn, ln, strings.ToLower(fn), strings.ToLower(ln), domains[r.IntN(len(domains))])
	subj := []string{}
	for k := 2 + r.IntN(5); k > 0; k-- {
		subj = append(subj, subjectWord(r))
	}
	if r.IntN(4) == 0 {
		subj = append([]string{"Re:"}, subj...)
	}
	fmt.Fprintf(&b, "Return-Path: <%s.%s@example.net>\n", strings.ToLower(fn), strings.ToLower(ln))
	fmt.Fprintf(&b, "From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%d.%d@bench.example.net>\nMIME-Version: 1.0\n",
		from, to, strings.Join(subj, " "), date.Format(time.RFC1123Z), i, r.Uint32())
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "Cc: %s <%s@example.org>\n", firstNames[r.IntN(len(firstNames))], vocabulary[r.IntN(len(vocabulary))])
	}
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, "In-Reply-To: <%d.0@bench.example.net>\nReferences: <%d.0@bench.example.net>\n", i-1, i-1)
	}
	b.WriteString("X-Mailer: imapbench\n")
	bound := fmt.Sprintf("=_bench_%d_%x", i, r.Uint32())
	switch p := r.IntN(100); {
	case p < 55:
		b.WriteString("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
		b.WriteString(textOfSize(r, logUniform(r, 700, 9000)))
	case p < 85:
		text := textOfSize(r, logUniform(r, 2000, 12000))
		fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\n\n", bound)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/plain; charset=utf-8\n\n%s\n", bound, text)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/html; charset=utf-8\n\n<html><body>\n", bound)
		html := logUniform(r, 6000, 45000)
		for start := b.Len(); b.Len()-start < html; {
			fmt.Fprintf(&b, "<p style=\"margin:0 0 12px 0;font-family:Arial,sans-serif\">%s</p>\n", strings.TrimSpace(words(r, 30)))
		}
		fmt.Fprintf(&b, "</body></html>\n--%s--\n", bound)
	default:
		att := logUniform(r, 25000, 220000)
		if p >= 98 {
			att = logUniform(r, 400000, 1500000)
		}
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", bound)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/plain; charset=utf-8\n\n%s\n", bound, textOfSize(r, logUniform(r, 300, 3000)))
		fmt.Fprintf(&b, "--%s\nContent-Type: application/pdf; name=\"%s.pdf\"\nContent-Disposition: attachment; filename=\"%s.pdf\"\nContent-Transfer-Encoding: base64\n\n",
			bound, vocabulary[r.IntN(len(vocabulary))], vocabulary[r.IntN(len(vocabulary))])
		raw := make([]byte, att*3/4)
		for k := range raw {
			raw[k] = byte(r.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteByte('\n')
			enc = enc[76:]
		}
		b.WriteString(enc)
		fmt.Fprintf(&b, "\n--%s--\n", bound)
	}
	return b.Bytes()
}
