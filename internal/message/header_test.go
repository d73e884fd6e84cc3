package message

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func filter(t *testing.T, in string, chunk int) (string, HeaderInfo, error) {
	t.Helper()
	var out bytes.Buffer
	f := &Filter{W: &out, MaxBytes: 1 << 20, MaxCount: 100, Drop: func(n string) bool { return n == "return-path" }}
	r := strings.NewReader(in)
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				return out.String(), f.Info, werr
			}
		}
		if err != nil {
			break
		}
	}
	err := f.Close()
	return out.String(), f.Info, err
}

func TestFilter(t *testing.T) {
	t.Parallel()
	in := "Return-Path: <evil@x>\r\nReceived: from a\r\n\tby b; date\r\nReceived: from c\r\nDelivered-To: Me@Example.test\r\nMessage-ID:\r\n <id@x>\r\nSubject: hi\r\n\r\nReturn-Path: body line\r\nbody\r\n"
	want := strings.Replace(in, "Return-Path: <evil@x>\r\n", "", 1)
	for _, chunk := range []int{1, 2, 3, 7, 64, 4096} {
		got, info, err := filter(t, in, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("chunk %d: got %q", chunk, got)
		}
		if info.Received != 2 || info.Fields != 6 || !info.Complete || info.MessageID != "<id@x>" ||
			len(info.DeliveredTo) != 1 || info.DeliveredTo[0] != "me@example.test" {
			t.Errorf("chunk %d: info %+v", chunk, info)
		}
	}
}

func TestFilterEdgeCases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Subject: only header\r\n", "Subject: only header\r\n"},
		{"Subject: no newline", "Subject: no newline"},
		// A line that is no field ends the header, and a blank line goes
		// before it, so nothing added in front can absorb it.
		{"no header line\r\nmore\r\n", "\r\nno header line\r\nmore\r\n"},
		{" From: ceo@bank.example\r\nSubject: s\r\n\r\nb\r\n", "\r\n From: ceo@bank.example\r\nSubject: s\r\n\r\nb\r\n"},
		{"Subject: a\r\nnot a field\r\nx\r\n", "Subject: a\r\n\r\nnot a field\r\nx\r\n"},
		{"Fr om: x\r\n", "\r\nFr om: x\r\n"},
		{"From : x\r\n\r\nb", "From : x\r\n\r\nb"},
		{"X-\xc3\xa9: x\r\n", "\r\nX-\xc3\xa9: x\r\n"},
		{"\r\nbody only\r\n", "\r\nbody only\r\n"},
		{"", ""},
	} {
		got, _, err := filter(t, tc.in, 5)
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v", tc.in, got, err)
		}
	}
}

func TestFilterLimits(t *testing.T) {
	t.Parallel()
	many := strings.Repeat("X-A: b\r\n", 101) + "\r\nbody\r\n"
	if _, _, err := filter(t, many, 100); !errors.Is(err, ErrTooManyHeaders) {
		t.Errorf("101 fields: %v", err)
	}
	var out bytes.Buffer
	f := &Filter{W: &out, MaxBytes: 1000, MaxCount: 1000}
	_, err := f.Write([]byte("X-Long: " + strings.Repeat("a", 2000) + "\r\n"))
	if !errors.Is(err, ErrHeaderTooBig) {
		t.Errorf("long header: %v", err)
	}
	// Bytes in the body do not count.
	f = &Filter{W: &out, MaxBytes: 100, MaxCount: 10}
	if _, err := f.Write([]byte("A: b\r\n\r\n" + strings.Repeat("x", 5000))); err != nil {
		t.Errorf("body counted: %v", err)
	}
}

func TestReceivedSanitizesHELO(t *testing.T) {
	t.Parallel()
	r := Received(Trace{HELO: "evil\r\nX-Injected: 1 (", RemoteIP: "192.0.2.1", By: "mx", With: "ESMTP", ID: "ID"})
	if strings.Count(r, "\r\n") != strings.Count(r, "\r\n\t")+1 || strings.Contains(r, "\nX-Injected") || strings.Contains(r, "(\r") {
		t.Errorf("injection through HELO: %q", r)
	}
}
