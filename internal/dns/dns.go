// Package dns looks up what mail routing needs (MX, A/AAAA, TXT) through
// configured resolvers, and says clearly whether a name does not exist
// (permanent) or the lookup failed (temporary). miekg/dns stays behind this
// package's Resolver interface.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// Errors of lookups.
var (
	// ErrNXDomain: the name does not exist (RCODE 3). Permanent.
	ErrNXDomain = errors.New("dns: no such domain")
	// ErrTemporary: SERVFAIL, timeout, refused… Try again later.
	ErrTemporary = errors.New("dns: temporary failure")
)

// MX is one mail exchanger.
type MX struct {
	Host string // without trailing dot; "" for a null MX (RFC 7505)
	Pref uint16
}

// Resolver is what the mail agents look up. A name that exists without
// records of the type asked for gives an empty result and no error.
type Resolver interface {
	LookupMX(ctx context.Context, domain string) ([]MX, error)
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Client is a Resolver that asks recursive resolvers.
type Client struct {
	servers []string
	timeout time.Duration
}

// New returns a Client for servers ("host:port"); with none it uses the
// nameservers of /etc/resolv.conf.
func New(servers []string, timeout time.Duration) (*Client, error) {
	if len(servers) == 0 {
		cc, err := mdns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
	}
	if len(servers) == 0 {
		return nil, errors.New("dns: no resolvers configured")
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{servers: servers, timeout: timeout}, nil
}

// LookupMX implements Resolver. Records are sorted by preference.
func (c *Client) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	rrs, err := c.query(ctx, domain, mdns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []MX
	for _, rr := range rrs {
		if mx, ok := rr.(*mdns.MX); ok {
			out = append(out, MX{Host: strings.TrimSuffix(strings.ToLower(mx.Mx), "."), Pref: mx.Preference})
		}
	}
	slices.SortStableFunc(out, func(a, b MX) int { return int(a.Pref) - int(b.Pref) })
	return out, nil
}

// LookupIP implements Resolver: AAAA and A records.
func (c *Client) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	var out []netip.Addr
	var errs []error
	for _, t := range []uint16{mdns.TypeAAAA, mdns.TypeA} {
		rrs, err := c.query(ctx, host, t)
		if errors.Is(err, ErrNXDomain) {
			return nil, err
		}
		errs = append(errs, err)
		for _, rr := range rrs {
			switch r := rr.(type) {
			case *mdns.A:
				if a, ok := netip.AddrFromSlice(r.A.To4()); ok {
					out = append(out, a)
				}
			case *mdns.AAAA:
				if a, ok := netip.AddrFromSlice(r.AAAA); ok {
					out = append(out, a)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// LookupTXT implements Resolver; each record's strings are joined.
func (c *Client) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := c.query(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

// query asks each server in turn until one answers definitively.
func (c *Client) query(ctx context.Context, name string, typ uint16) ([]mdns.RR, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), typ)
	m.SetEdns0(1232, false)
	var last error
	for _, srv := range c.servers {
		in, err := c.exchange(ctx, m, srv)
		if err == nil {
			err = answers(m, in)
		}
		if err != nil {
			last = err
			continue
		}
		switch in.Rcode {
		case mdns.RcodeSuccess:
			return in.Answer, nil
		case mdns.RcodeNameError:
			return nil, fmt.Errorf("%w: %s", ErrNXDomain, name)
		default:
			last = fmt.Errorf("%s from %s", mdns.RcodeToString[in.Rcode], srv)
		}
	}
	return nil, fmt.Errorf("%w: %s %s: %v", ErrTemporary, name, mdns.TypeToString[typ], last)
}

// answers checks that a response is to the question asked (the library
// checks only the id): a reply for another name, or of another type, was
// taken for the answer (RFC 5452 asks resolvers to match the question,
// not only the id).
func answers(q, in *mdns.Msg) error {
	if len(in.Question) != 1 || !strings.EqualFold(in.Question[0].Name, q.Question[0].Name) ||
		in.Question[0].Qtype != q.Question[0].Qtype || in.Question[0].Qclass != q.Question[0].Qclass {
		return fmt.Errorf("dns: the reply does not answer %s %s", q.Question[0].Name, mdns.TypeToString[q.Question[0].Qtype])
	}
	return nil
}

// exchange sends one query over UDP, retrying over TCP when truncated.
func (c *Client) exchange(ctx context.Context, m *mdns.Msg, srv string) (*mdns.Msg, error) {
	cl := &mdns.Client{Timeout: c.timeout}
	in, _, err := cl.ExchangeContext(ctx, m, srv)
	if err == nil && in.Truncated {
		cl.Net = "tcp"
		in, _, err = cl.ExchangeContext(ctx, m, srv)
	}
	return in, err
}
