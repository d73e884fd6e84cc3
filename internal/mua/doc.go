// Package mua is the mail user agent behind `posthorn mail`: it reads
// client profiles, composes MIME messages, submits them (SMTP submission
// with STARTTLS or implicit TLS and AUTH, or straight to the recipients'
// MX hosts), and reads and files mail over IMAP with go-imap's client. It
// speaks only standard protocols, so it works with any server, posthorn
// or not.
//
// Files by topic:
//
//   - profile.go: client.toml, servers, passwords, TLS trust (tls.go)
//   - compose.go, header.go: Draft → RFC 5322/MIME bytes
//   - parse.go, filename.go: bytes → text, attachments, safe file names
//   - reply.go: reply and forward drafts
//   - submit.go: submission and direct (MX) delivery
//   - imap.go, watch.go, search.go: the IMAP side
//   - format.go: what people read on a terminal
//
// Invariants: nothing that reaches a header comes from user input without
// going through the encoders of header.go (no CR or LF can be injected);
// a password never crosses a connection before TLS is up; file names
// taken from messages pass through SafeFilename before they touch a disk.
package mua
