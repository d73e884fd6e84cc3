package fetch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Deliverer stores a fetched message for a local address, through its
// aliases and Sieve script, as mail arriving by SMTP would be. A nil error
// means the message is on stable storage. An error wrapping [ErrRefused]
// means this message will never be accepted (the fetcher leaves it on the
// server and goes on); any other error is temporary (the fetcher stops and
// tries again later).
type Deliverer interface {
	Deliver(ctx context.Context, account, envelopeFrom string, msg []byte) error
}

// Resumer is implemented by a Deliverer that can finish a delivery that a
// crash interrupted. Resume delivers msg as Deliver does, except to every
// mailbox owner that already holds a message, delivered at or after since,
// whose first X-Posthorn-Fetch field is id.
type Resumer interface {
	Resume(ctx context.Context, account, envelopeFrom string, msg []byte, id string, since time.Time) error
}

// ErrRefused marks a permanent refusal of one message.
var ErrRefused = errors.New("fetch: message refused")

// IDField is the header field that carries the fetch id.
const IDField = "X-Posthorn-Fetch"

// escapeID percent-escapes s for use in a fetch id: everything but
// letters, digits and "._-~+@".
func escapeID(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if nameByte(c) || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// imapID is the fetch id of an IMAP message.
func imapID(source, folder string, uidValidity, uid uint32) string {
	return imapPrefix(source, folder) + strconv.FormatUint(uint64(uidValidity), 10) + "/" + strconv.FormatUint(uint64(uid), 10)
}

// imapPrefix starts every fetch id of one folder.
func imapPrefix(source, folder string) string {
	return source + "/" + escapeID(folder) + "/"
}

// pop3ID is the fetch id of a POP3 message.
func pop3ID(source, uidl string) string {
	return source + "/pop3/" + escapeID(uidl)
}

// trace returns the fields prepended to every fetched message: Received
// (RFC 5321 §4.4, "with" naming the protocol as fetchmail does) and the
// fetch id.
func trace(src *Source, hostname, id string, now time.Time) []byte {
	proto := strings.ToUpper(src.Protocol)
	if src.TLS != TLSNone {
		proto += "S"
	}
	return fmt.Appendf(nil, "Received: from %s\r\n\tby %s (posthorn fetch) with %s\r\n\tid %s for <%s>;\r\n\t%s\r\n%s: %s\r\n",
		src.Host, hostname, proto, src.Name, src.Account, now.Format(time.RFC1123Z), IDField, id)
}

// maxHeaderScan bounds how much of a message is read to find header
// fields (Return-Path, our own fetch id, fingerprint fields).
const maxHeaderScan = 256 << 10

// header returns the values of the named fields (canonical keys) of the
// header at the start of msg, unfolded, in order; at most maxHeaderScan
// octets are read.
func header(msg []byte) textproto.MIMEHeader {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	switch {
	case end >= 0 && end < maxHeaderScan:
		msg = msg[:end+4]
	case len(msg) > maxHeaderScan:
		msg = msg[:maxHeaderScan]
	}
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(msg), strings.NewReader("\r\n\r\n"))))
	h, _ := r.ReadMIMEHeader() // a damaged header yields what came before
	return h
}

// envelopeFrom returns the address of the message's first Return-Path
// field, or "" (the null sender) when there is none.
func envelopeFrom(h textproto.MIMEHeader) string {
	rp := strings.TrimSpace(h.Get("Return-Path"))
	rp = strings.TrimSuffix(strings.TrimPrefix(rp, "<"), ">")
	if strings.ContainsAny(rp, " \t<>\r\n") {
		return ""
	}
	return rp
}

// looped reports whether msg already went through this source: a fetch
// id of ours is in its header.
func looped(h textproto.MIMEHeader, source string) bool {
	for _, v := range h.Values(IDField) {
		if strings.HasPrefix(strings.TrimSpace(v), source+"/") {
			return true
		}
	}
	return false
}

// fingerprint identifies a message across a UIDVALIDITY change by its
// size and the fields that a server does not rewrite.
func fingerprint(size int64, h textproto.MIMEHeader) string {
	sum := sha256.New()
	fmt.Fprintf(sum, "%d", size)
	for _, k := range fingerprintFields {
		sum.Write([]byte{0})
		sum.Write([]byte(strings.Join(strings.Fields(h.Get(k)), " ")))
	}
	return hex.EncodeToString(sum.Sum(nil)[:16])
}

// fingerprintFields are hashed by fingerprint.
var fingerprintFields = []string{"Message-Id", "Date", "From", "Subject"}

// IDOf returns the fetch id of a stored message, given at least its
// header section: the value of its first X-Posthorn-Fetch field, or "".
func IDOf(msg []byte) string {
	return strings.TrimSpace(header(msg).Get(IDField))
}
