package smtp

import (
	"fmt"
	"strconv"
	"strings"
)

// Reply codes used by this package (RFC 5321 §4.2.2, §4.2.3).
const (
	CodeHelp            = 214
	CodeReady           = 220
	CodeClosing         = 221
	CodeOK              = 250
	CodeCannotVerify    = 252
	CodeStartData       = 354
	CodeUnavailable     = 421
	CodeMailboxBusy     = 450
	CodeLocalError      = 451
	CodeInsufficient    = 452
	CodeTLSNotAvailable = 454
	CodeSyntax          = 500
	CodeParamSyntax     = 501
	CodeNotImplemented  = 502
	CodeBadSequence     = 503
	CodeParamNotImpl    = 504
	CodeAuthRequired    = 530
	CodeMailboxNotFound = 550
	CodeExceededStorage = 552
	CodeNameNotAllowed  = 553
	CodeTransFailed     = 554
	CodeParamsNotRecog  = 555
)

// Error is an SMTP reply that reports a failure. Code 4xx means temporary,
// 5xx permanent; that class is the only retry signal callers use.
//
// Msg is sent to the client and must not carry internal details; Err is the
// cause, for the log only.
type Error struct {
	Code     int    // reply code, 400–599
	Enhanced string // enhanced status code (RFC 3463), e.g. "5.1.1"
	Msg      string // text for the client
	Err      error  // cause, logged, never sent
}

// Errorf returns an *Error with a formatted client text.
func Errorf(code int, enhanced, format string, args ...any) *Error {
	return &Error{Code: code, Enhanced: enhanced, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	s := strconv.Itoa(e.Code) + " " + e.Enhanced + " " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure is transient (a 4xx code).
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Wrap returns a copy of e with cause err, for logging.
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// Reply is one complete SMTP reply, possibly multi-line.
type Reply struct {
	Code     int
	Enhanced string // empty when the reply carries no enhanced code
	Lines    []string
}

// format renders r in wire form: every line but the last uses "code-", the
// last "code " (RFC 5321 §4.2.1). Enhanced codes prefix every line
// (RFC 2034 §4). Text is stripped of CR and LF so a reply can never split.
func (r Reply) format(b *strings.Builder) {
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		b.WriteString(strconv.Itoa(r.Code))
		if i < len(lines)-1 {
			b.WriteByte('-')
		} else {
			b.WriteByte(' ')
		}
		if r.Enhanced != "" {
			b.WriteString(r.Enhanced)
			b.WriteByte(' ')
		}
		b.WriteString(sanitizeText(l))
		b.WriteString("\r\n")
	}
}

func sanitizeText(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}
