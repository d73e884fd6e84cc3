package message

import (
	"reflect"
	"strings"
	"testing"
)

func envelopeOf(t *testing.T, header string) Envelope {
	t.Helper()
	p, err := ParseStructure(strings.NewReader(crlf(header)+"\r\n\r\nbody"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Envelope()
}

func TestEnvelopeOfHeader(t *testing.T) {
	t.Parallel()
	alice := []Address{{Name: "Alice A.", Mailbox: "alice", Host: "example.org"}}
	for _, tc := range []struct {
		name, header string
		want         Envelope
	}{
		{
			name: "every field",
			header: `Date: Mon, 2 Jun 2025 10:00:00 +0000
Subject: =?utf-8?q?caf=C3=A9?= ok
From: "Alice A." <alice@example.org>
Sender: list@example.org
Reply-To: replies@example.org (Replies)
To: bob@example.net,
 Carol <carol@example.net>
Cc: A group: a@b.example, c@d.example;
Bcc: undisclosed-recipients:;
In-Reply-To: <0@example.org>
Message-ID: <1@example.org>`,
			want: Envelope{
				Date: "Mon, 2 Jun 2025 10:00:00 +0000", Subject: "=?utf-8?q?caf=C3=A9?= ok",
				InReplyTo: "<0@example.org>", MessageID: "<1@example.org>",
				From:    alice,
				Sender:  []Address{{Mailbox: "list", Host: "example.org"}},
				ReplyTo: []Address{{Name: "Replies", Mailbox: "replies", Host: "example.org"}},
				To:      []Address{{Mailbox: "bob", Host: "example.net"}, {Name: "Carol", Mailbox: "carol", Host: "example.net"}},
				Cc: []Address{{Mailbox: "A group", Group: true}, {Mailbox: "a", Host: "b.example"},
					{Mailbox: "c", Host: "d.example"}, {GroupEnd: true}},
				Bcc: []Address{{Mailbox: "undisclosed-recipients", Group: true}, {GroupEnd: true}},
			},
		},
		{
			// RFC 9051 §7.5.2: Sender and Reply-To default to From.
			name:   "Sender and Reply-To default to From",
			header: `From: "Alice A." <alice@example.org>`,
			want:   Envelope{From: alice, Sender: alice, ReplyTo: alice},
		},
		{
			name:   "missing fields are empty",
			header: "X-Other: 1",
			want:   Envelope{},
		},
		{
			name:   "encoded words stay raw",
			header: "From: =?iso-8859-1?q?Andr=E9?= <andre@example.org>\nSubject: =?utf-8?b?w6k=?=",
			want: Envelope{
				Subject: "=?utf-8?b?w6k=?=",
				From:    []Address{{Name: "=?iso-8859-1?q?Andr=E9?=", Mailbox: "andre", Host: "example.org"}},
				Sender:  []Address{{Name: "=?iso-8859-1?q?Andr=E9?=", Mailbox: "andre", Host: "example.org"}},
				ReplyTo: []Address{{Name: "=?iso-8859-1?q?Andr=E9?=", Mailbox: "andre", Host: "example.org"}},
			},
		},
		{
			name:   "first of repeated fields",
			header: "Subject: one\nSubject: two\nmessage-id: <m@x>",
			want:   Envelope{Subject: "one", MessageID: "<m@x>"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := envelopeOf(t, tc.header); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAddressListLenient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []Address
	}{
		{"", nil},
		{" , ,, ", nil},
		{"a@b.example", []Address{{Mailbox: "a", Host: "b.example"}}},
		{`"Last, First" <f@x.example>`, []Address{{Name: "Last, First", Mailbox: "f", Host: "x.example"}}},
		{`f@x.example (First Last)`, []Address{{Name: "First Last", Mailbox: "f", Host: "x.example"}}},
		{`"a\"b" <x@y.example>`, []Address{{Name: `a"b`, Mailbox: "x", Host: "y.example"}}},
		{"undisclosed-recipients:;", []Address{{Mailbox: "undisclosed-recipients", Group: true}, {GroupEnd: true}}},
		{"A group: a@b, c@d;", []Address{{Mailbox: "A group", Group: true}, {Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}, {GroupEnd: true}}},
		{"g: a@b; c@d", []Address{{Mailbox: "g", Group: true}, {Mailbox: "a", Host: "b"}, {GroupEnd: true}, {Mailbox: "c", Host: "d"}}},
		// Broken lists still give something sensible.
		{"team: a@b", []Address{{Mailbox: "team", Group: true}, {Mailbox: "a", Host: "b"}, {GroupEnd: true}}},
		{"<unterminated@example.org", []Address{{Mailbox: "unterminated", Host: "example.org"}}},
		{"Bob Smith <bob@example.org>, broken <, c@d", []Address{{Name: "Bob Smith", Mailbox: "bob", Host: "example.org"}, {Name: "broken", Mailbox: ", c", Host: "d"}}},
		{"user", []Address{{Mailbox: "user", Host: "MISSING_DOMAIN"}}},
		{"a.b@c@d", []Address{{Mailbox: "a.b@c", Host: "d"}}},
		{"<@route.example:user@example.org>", []Address{{Mailbox: "user", Host: "example.org"}}},
		{`"unclosed <a@b>, c@d`, []Address{{Name: `"unclosed`, Mailbox: "a", Host: "b"}}},
	} {
		if got := ParseAddressList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\ngot  %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestAddressListBounded(t *testing.T) {
	t.Parallel()
	// CVE-2024-23184: many addresses must cost little and stay bounded.
	got := ParseAddressList(strings.Repeat("a@b, ", 100000))
	if len(got) != maxAddresses {
		t.Errorf("%d addresses", len(got))
	}
}

func TestParseAddressListNeverEmptyParts(t *testing.T) {
	for in, want := range map[string]Address{
		"foo@": {Mailbox: "foo", Host: "MISSING_DOMAIN"},
		"@":    {Mailbox: "MISSING_MAILBOX", Host: "MISSING_DOMAIN"},
		"@b":   {Mailbox: "MISSING_MAILBOX", Host: "b"},
		"a@b;": {Mailbox: "a", Host: "b"},
	} {
		got := ParseAddressList(in)
		if len(got) != 1 || got[0] != want {
			t.Errorf("ParseAddressList(%q) = %+v, want %+v", in, got, want)
		}
	}
}
