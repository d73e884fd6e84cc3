package smtp

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// bdatState is a message arriving in BDAT chunks (RFC 3030). The session's
// Data runs in its own goroutine, reading the chunks through a pipe while
// the connection goroutine reads them off the wire.
type bdatState struct {
	pw     *io.PipeWriter
	check  lineChecker
	result chan dataResult
	// deadline bounds the whole message, chunks and the commands between
	// them, as DataTimeout bounds a DATA transfer: re-armed per chunk, a
	// client dripping small chunks held a transaction open for ever.
	deadline time.Time
}

type dataResult struct {
	id      string
	results []error // LMTP: per recipient
	err     error
}

func (c *conn) startBdat() *bdatState {
	pr, pw := io.Pipe()
	b := &bdatState{pw: pw, check: lineChecker{lim: c.limits()}, result: make(chan dataResult, 1)}
	sess, ctx := c.sess, c.ctx
	lmtp, _ := sess.(LMTPSession)
	if !c.s.opts.LMTP {
		lmtp = nil
	}
	go func() {
		defer c.s.recoverWorker(c, b.result)
		var res dataResult
		if lmtp != nil {
			res.id, res.results, res.err = lmtp.LMTPData(ctx, pr)
		} else {
			res.id, res.err = sess.Data(ctx, pr)
		}
		_ = pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if Data stopped early
		b.result <- res
	}()
	return b
}

// finish closes the pipe with err (nil: normal end) and waits for Data.
func (b *bdatState) finish(err error) dataResult {
	_ = b.pw.CloseWithError(err)
	return <-b.result
}

func (b *bdatState) abort(err error) { b.finish(err) }

// parseBdat reads "size [LAST]".
func parseBdat(arg string) (size int64, last bool, ok bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 || len(f[0]) > 18 {
		return 0, false, false
	}
	for _, ch := range f[0] {
		if ch < '0' || ch > '9' {
			return 0, false, false
		}
	}
	size, _ = strconv.ParseInt(f[0], 10, 64)
	if len(f) == 2 {
		if !strings.EqualFold(f[1], "LAST") {
			return 0, false, false
		}
		last = true
	}
	return size, last, true
}

// cmdBdat receives one chunk (RFC 3030 §2). Whatever happens, the chunk's
// octets are consumed, so the command stream stays in step.
func (c *conn) cmdBdat(arg string) {
	size, last, ok := parseBdat(arg)
	if !ok {
		// Without a size we cannot find the next command: hang up.
		c.fail(&Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Syntax: BDAT size [LAST]"})
		c.quit = true
		return
	}
	c.deadline = time.Now().Add(c.s.opts.DataTimeout)
	if c.bdat != nil {
		c.deadline = c.bdat.deadline
	}
	if !c.mail || c.rcpts == 0 {
		if _, err := readChunk(c.br, size, &lineChecker{lim: dataLimits{maxBytes: 1<<63 - 1, maxLine: 1<<31 - 1}}, io.Discard); err != nil {
			c.quit = true
			return
		}
		if !c.mail {
			c.fail(errNeedMail)
		} else {
			c.fail(errNoRcpts)
		}
		return
	}
	if c.bdat == nil {
		c.bdat = c.startBdat()
		c.bdat.deadline = c.deadline
	}
	b := c.bdat
	werr, err := readChunk(c.br, size, &b.check, b.pw)
	switch {
	case err != nil:
		c.quit = true
		c.resetTx()
	case b.check.err != nil:
		res := b.finish(b.check.err)
		c.bdat = nil
		c.finish(res, b.check.err)
	case werr != nil: // Data gave up early; its error is the reply
		res := b.finish(werr)
		c.bdat = nil
		c.finish(res, nil)
	case !last:
		c.reply(CodeOK, "2.0.0", "%d octets received", size)
	default:
		inErr := b.check.finish()
		var res dataResult
		if inErr != nil {
			res = b.finish(inErr)
		} else {
			res = b.finish(nil)
		}
		c.bdat = nil
		c.finish(res, inErr)
	}
}

// finish replies to the end of a BDAT message, once per recipient in LMTP.
func (c *conn) finish(res dataResult, inErr *Error) {
	if c.s.opts.LMTP {
		c.lmtpReplies(res.id, res.results, res.err, inErr)
		return
	}
	c.finishMessage(res.id, res.err, inErr)
}
