package mua

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"posthorn/internal/dns"
	"posthorn/internal/outbound"
	"posthorn/internal/queue"
	"posthorn/internal/sasl"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
)

// Timeouts of the sending side.
const (
	dialTimeout    = 30 * time.Second
	commandTimeout = 5 * time.Minute // RFC 5321 §4.5.3.2
)

// RcptResult is the outcome for one recipient.
type RcptResult struct {
	Addr     string `json:"address"`
	Code     int    `json:"code"`
	Enhanced string `json:"enhanced,omitempty"`
	Text     string `json:"text,omitempty"`
	Remote   string `json:"remote,omitempty"`
}

// OK reports a 2xx reply: the recipient's server took the message.
func (r RcptResult) OK() bool { return r.Code/100 == 2 }

func (r RcptResult) String() string {
	s := fmt.Sprintf("%s: %d", r.Addr, r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if r.Text != "" {
		s += " " + r.Text
	}
	return s
}

// Submit sends c through the profile's submission server (RFC 6409):
// implicit TLS (RFC 8314) or STARTTLS, which must be offered (RFC 3207),
// then AUTH with SCRAM-SHA-256 when offered (the password never leaves
// us, RFC 7677), else PLAIN (RFC 4616) inside the TLS session. It returns
// one result per recipient; the error is set when the message was not
// taken at all.
func Submit(ctx context.Context, p *Profile, c *Composed) ([]RcptResult, error) {
	if err := p.NeedSubmission(); err != nil {
		return nil, err
	}
	cl, err := dialSubmission(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("submission %s: %w", p.Submission.Addr(), err)
	}
	defer cl.Close()
	if p.User != "" {
		if err := authenticate(ctx, cl, p); err != nil {
			return nil, fmt.Errorf("submission %s: %w", p.Submission.Addr(), err)
		}
	}
	env := smtp.Envelope{From: c.From, Size: int64(len(c.Raw)), Body8: c.Body8, UTF8: c.UTF8}
	for _, r := range c.Rcpts {
		env.Rcpts = append(env.Rcpts, smtp.EnvelopeRcpt{Addr: r})
	}
	res, err := cl.Send(env, bytes.NewReader(c.Raw))
	if err != nil {
		return nil, fmt.Errorf("submission %s: %w", p.Submission.Addr(), err)
	}
	_ = cl.Quit()
	if res.Mail.Code != smtp.CodeOK {
		return nil, fmt.Errorf("submission %s refused the sender %s: %v", p.Submission.Addr(), c.From, res.Mail)
	}
	out := make([]RcptResult, len(c.Rcpts))
	for i, addr := range c.Rcpts {
		r := smtp.Reply{Code: 451, Lines: []string{"no reply"}}
		if i < len(res.Rcpts) {
			r = res.Rcpts[i]
		}
		if r.Code/100 == 2 {
			r = res.Data
		}
		out[i] = RcptResult{Addr: addr, Code: r.Code, Enhanced: r.Enhanced, Text: r.Text(), Remote: p.Submission.Host}
	}
	if res.Data.Code != 0 && res.Data.Code/100 != 2 {
		return out, fmt.Errorf("submission %s refused the message: %v", p.Submission.Addr(), res.Data)
	}
	if !slices.ContainsFunc(out, RcptResult.OK) {
		return out, fmt.Errorf("submission %s refused every recipient", p.Submission.Addr())
	}
	return out, nil
}

// dialSubmission connects, says EHLO and has TLS up before returning.
func dialSubmission(ctx context.Context, p *Profile) (*smtp.Client, error) {
	tc, err := p.tlsConfig(p.Submission)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: dialTimeout}
	var nc net.Conn
	if p.Submission.TLS == TLSImplicit {
		nc, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", p.Submission.Addr())
	} else {
		nc, err = d.DialContext(ctx, "tcp", p.Submission.Addr())
	}
	if err != nil {
		return nil, err
	}
	cl, err := smtp.NewClient(nc, commandTimeout)
	if err != nil {
		nc.Close()
		return nil, err
	}
	helo := heloName()
	if err := cl.Hello(helo); err != nil {
		cl.Close()
		return nil, err
	}
	if p.Submission.TLS == TLSStart {
		if _, ok := cl.Ext("STARTTLS"); !ok {
			cl.Close()
			return nil, errors.New("the server does not offer STARTTLS: not sending a password in the clear")
		}
		if err := cl.StartTLS(ctx, tc); err != nil {
			cl.Close()
			return nil, err
		}
		if err := cl.Hello(helo); err != nil { // RFC 3207 §4.2: forget what was said before
			cl.Close()
			return nil, err
		}
	}
	return cl, nil
}

// heloName is this host's name, for EHLO.
func heloName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \t\r\n") {
		return "localhost"
	}
	return h
}

// authenticate runs AUTH (RFC 4954) with the best mechanism both sides
// know.
func authenticate(ctx context.Context, cl *smtp.Client, p *Profile) error {
	adv, ok := cl.Ext("AUTH")
	if !ok {
		return errors.New("the server offers no AUTH")
	}
	mechs := strings.Fields(strings.ToUpper(adv))
	pw, err := p.password(ctx)
	if err != nil {
		return err
	}
	switch {
	case slices.Contains(mechs, sasl.ScramSHA256):
		sc, err := sasl.NewSCRAMClient(p.User, pw)
		if err != nil {
			return err
		}
		if err := cl.Auth(sasl.ScramSHA256, sc.Step); err != nil {
			return fmt.Errorf("AUTH %s: %w", sasl.ScramSHA256, err)
		}
		if !sc.Valid() {
			// RFC 5802 §5: the server must prove it knows the credentials.
			return errors.New("AUTH SCRAM-SHA-256: the server did not prove it knows the password")
		}
		return nil
	case slices.Contains(mechs, sasl.Plain):
		if err := cl.Auth(sasl.Plain, smtp.PlainAuth(p.User, pw)); err != nil {
			return fmt.Errorf("AUTH PLAIN: %w", err)
		}
		return nil
	}
	return fmt.Errorf("the server offers AUTH %s; we speak %s and %s", adv, sasl.ScramSHA256, sasl.Plain)
}

// SendDirect delivers c to each recipient domain's MX hosts (RFC 5321
// §5.1) with posthorn's outbound client: no submission server, no
// queue. A temporary failure is reported, not retried: send again later
// or through a server.
func SendDirect(ctx context.Context, p *Profile, c *Composed) ([]RcptResult, error) {
	res, err := dns.New(p.Direct.DNS, 10*time.Second)
	if err != nil {
		return nil, err
	}
	host := p.Direct.Hostname
	if host == "" {
		host = heloName()
	}
	snd, err := outbound.New(outbound.Options{Resolver: res, Hostname: host, Port: p.Direct.Port,
		ConnectTimeout: dialTimeout, CommandTimeout: commandTimeout})
	if err != nil {
		return nil, err
	}
	var domains []string
	byDomain := map[string][]store.QueuedRcpt{}
	for _, r := range c.Rcpts {
		i := strings.LastIndexByte(r, '@')
		if i < 0 {
			return nil, fmt.Errorf("%q has no domain", r)
		}
		d := strings.ToLower(r[i+1:])
		if byDomain[d] == nil {
			domains = append(domains, d)
		}
		byDomain[d] = append(byDomain[d], store.QueuedRcpt{Addr: r})
	}
	var out []RcptResult
	for _, d := range domains {
		env := queue.Envelope{ID: c.MessageID, From: c.From, UTF8: c.UTF8, Domain: d, Rcpts: byDomain[d]}
		results := snd.Deliver(ctx, env, bytes.NewReader(c.Raw), int64(len(c.Raw)))
		for i, r := range env.Rcpts {
			rr := RcptResult{Addr: r.Addr, Code: 451, Text: "no result"}
			if i < len(results) {
				x := results[i]
				rr = RcptResult{Addr: r.Addr, Code: x.Code, Enhanced: x.Enhanced, Text: x.Text, Remote: x.Remote}
			}
			out = append(out, rr)
		}
	}
	if !slices.ContainsFunc(out, RcptResult.OK) {
		return out, errors.New("no recipient's server took the message")
	}
	return out, nil
}
