package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
	mdns "github.com/miekg/dns"
)

func mockServer(t *testing.T) string {
	t.Helper()
	srv, err := mockdns.NewServerWithLogger(map[string]mockdns.Zone{
		"example.test.":      {MX: []net.MX{{Host: "mx2.example.test.", Pref: 20}, {Host: "mx1.example.test.", Pref: 10}}},
		"mx1.example.test.":  {A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"}},
		"nomx.example.test.": {A: []string{"192.0.2.2"}, TXT: []string{"v=spf1 -all"}},
		"null.example.test.": {MX: []net.MX{{Host: ".", Pref: 0}}},
		"fail.example.test.": {Err: errors.New("boom")},
	}, nullLogger{}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.LocalAddr().String()
}

type nullLogger struct{}

func (nullLogger) Printf(string, ...any) {}

func TestLookups(t *testing.T) {
	t.Parallel()
	c, err := New([]string{mockServer(t)}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mx, err := c.LookupMX(ctx, "example.test")
	if err != nil || len(mx) != 2 || mx[0].Host != "mx1.example.test" || mx[1].Pref != 20 {
		t.Errorf("MX = %+v, %v", mx, err)
	}
	if mx, err := c.LookupMX(ctx, "nomx.example.test"); err != nil || len(mx) != 0 {
		t.Errorf("no-data MX = %+v, %v", mx, err)
	}
	if mx, err := c.LookupMX(ctx, "null.example.test"); err != nil || len(mx) != 1 || mx[0].Host != "" {
		t.Errorf("null MX = %+v, %v", mx, err)
	}
	if _, err := c.LookupMX(ctx, "missing.test"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	if _, err := c.LookupMX(ctx, "fail.example.test"); !errors.Is(err, ErrTemporary) {
		t.Errorf("SERVFAIL: %v", err)
	}
	ips, err := c.LookupIP(ctx, "mx1.example.test")
	if err != nil || len(ips) != 2 || ips[0] != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("IPs = %v, %v", ips, err)
	}
	txt, err := c.LookupTXT(ctx, "nomx.example.test")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Errorf("TXT = %v, %v", txt, err)
	}
}

func TestUnreachableResolverIsTemporary(t *testing.T) {
	t.Parallel()
	c, _ := New([]string{"127.0.0.1:1"}, 300*time.Millisecond)
	if _, err := c.LookupMX(context.Background(), "example.test"); !errors.Is(err, ErrTemporary) {
		t.Errorf("err = %v", err)
	}
}

// TestAnswerToAnotherQuestion: a reply with the right id whose question
// is another name (or type) is not taken for the answer.
func TestAnswerToAnotherQuestion(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(mdns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			r := new(mdns.Msg)
			r.SetReply(q)
			r.Question[0].Name = "victim.test."
			mx, _ := mdns.NewRR("victim.test. 60 IN MX 10 mx.evil.test.")
			r.Answer = []mdns.RR{mx}
			out, _ := r.Pack()
			pc.WriteTo(out, from)
		}
	}()
	c, err := New([]string{pc.LocalAddr().String()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if mx, err := c.LookupMX(context.Background(), "spoof.test"); err == nil {
		t.Errorf("a reply about victim.test answered spoof.test: %+v", mx)
	}
}
