package imap_test

import (
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// go-imap v2's client is a peer we did not write: a whole session through it.
func TestGoIMAPClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	e.deliver(t, msg2)
	updates := make(chan uint32, 10)
	c, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{
		TLSConfig: &tls.Config{InsecureSkipVerify: true},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					updates <- *d.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Login("me@example.test", password).Wait())
	boxes, err := c.List("", "*", &goimap.ListOptions{ReturnStatus: &goimap.StatusOptions{NumMessages: true}}).Collect()
	must(err)
	if len(boxes) != 6 {
		t.Errorf("%d mailboxes", len(boxes))
	}
	sel, err := c.Select("INBOX", nil).Wait()
	must(err)
	if sel.NumMessages != 2 || sel.UIDValidity == 0 {
		t.Fatalf("select %+v", sel)
	}
	msgs, err := c.Fetch(goimap.SeqSetNum(1, 2), &goimap.FetchOptions{Envelope: true, BodyStructure: &goimap.FetchItemBodyStructure{Extended: true}, UID: true, RFC822Size: true}).Collect()
	must(err)
	if len(msgs) != 2 || msgs[0].Envelope.Subject != "first message" || msgs[0].Envelope.From[0].Addr() != "alice@a.test" {
		t.Fatalf("fetch %+v", msgs[0].Envelope)
	}
	if mp, ok := msgs[1].BodyStructure.(*goimap.BodyStructureMultiPart); !ok || len(mp.Children) != 2 || mp.Subtype != "mixed" {
		t.Errorf("bodystructure %+v", msgs[1].BodyStructure)
	}
	sec := &goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierText, Peek: true}
	body, err := c.Fetch(goimap.UIDSetNum(msgs[0].UID), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{sec}}).Collect()
	must(err)
	if got := string(body[0].FindBodySection(sec)); got != "Hello there, this is the body.\r\n" {
		t.Errorf("body %q", got)
	}
	must(c.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagFlagged}, Silent: true}, nil).Close())
	found, err := c.UIDSearch(&goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagFlagged}}, nil).Wait()
	must(err)
	if uids := found.AllUIDs(); len(uids) != 1 || uids[0] != msgs[0].UID {
		t.Errorf("search %v", uids)
	}
	mv, err := c.Move(goimap.SeqSetNum(2), "Archive").Wait()
	must(err)
	if mv.UIDValidity == 0 {
		t.Errorf("move data %+v", mv)
	}
	content := "Subject: appended by go-imap\r\n\r\nbody\r\n"
	ap := c.Append("INBOX", int64(len(content)), &goimap.AppendOptions{Flags: []goimap.Flag{goimap.FlagSeen}})
	_, _ = io.Copy(ap, strings.NewReader(content))
	must(ap.Close())
	apd, err := ap.Wait()
	must(err)
	if apd.UID == 0 {
		t.Error("no APPENDUID")
	}
	must(c.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}, Silent: true}, nil).Close())
	exp, err := c.Expunge().Collect()
	must(err)
	if len(exp) != 1 {
		t.Errorf("expunged %v", exp)
	}
	idle, err := c.Idle()
	must(err)
	e.deliver(t, msg1)
	select {
	case n := <-updates:
		if n < 2 {
			t.Errorf("EXISTS %d", n)
		}
	case <-time.After(time.Second):
		t.Error("IDLE did not see the delivery within a second")
	}
	must(idle.Close())
	must(idle.Wait())
	must(c.Logout().Wait())
}
