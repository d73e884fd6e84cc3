package mua

import (
	"reflect"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestParseQuery(t *testing.T) {
	t.Parallel()
	hdr := func(k, v string) imap.SearchCriteriaHeaderField {
		return imap.SearchCriteriaHeaderField{Key: k, Value: v}
	}
	for _, c := range []struct {
		q    string
		want imap.SearchCriteria
	}{
		{"hello", imap.SearchCriteria{Text: []string{"hello"}}},
		{`"two words" from:alice`, imap.SearchCriteria{Text: []string{"two words"}, Header: []imap.SearchCriteriaHeaderField{hdr("From", "alice")}}},
		{`subject:"big plans" to:bob cc:c bcc:d`, imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{
			hdr("Subject", "big plans"), hdr("To", "bob"), hdr("Cc", "c"), hdr("Bcc", "d")}}},
		{"is:unseen is:Flagged", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Flag: []imap.Flag{imap.FlagFlagged}}},
		{"body:x text:y", imap.SearchCriteria{Body: []string{"x"}, Text: []string{"y"}}},
		{"since:2024-05-01 before:2024-06-01", imap.SearchCriteria{Since: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Before: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}},
		{"larger:2k smaller:1M", imap.SearchCriteria{Larger: 2048, Smaller: 1 << 20}},
		{"-from:spam", imap.SearchCriteria{Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{hdr("From", "spam")}}}}},
		{"from:a OR from:b", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
			{Header: []imap.SearchCriteriaHeaderField{hdr("From", "a")}}, {Header: []imap.SearchCriteriaHeaderField{hdr("From", "b")}}}}}},
		{"http://x.test/a:b", imap.SearchCriteria{Text: []string{"http://x.test/a:b"}}},
		{"Grüße", imap.SearchCriteria{Text: []string{"Grüße"}}},
	} {
		got, err := ParseQuery(c.q)
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", c.q, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("ParseQuery(%q) = %+v, want %+v", c.q, *got, c.want)
		}
	}
	for _, bad := range []string{"", `"open`, "is:fancy", "since:yesterday", "larger:big", "OR x", "x OR", "from:"} {
		if _, err := ParseQuery(bad); err == nil {
			t.Errorf("ParseQuery(%q) gave no error", bad)
		}
	}
}

func TestParseUIDs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"7": "7", "3,5": "3,5", "7:3": "3:7", "1,4:6": "1,4:6"} {
		s, err := ParseUIDs(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseUIDs(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "0", "*", "1:*", "x", "-1", "1,,2", "99999999999"} {
		if _, err := ParseUIDs(bad); err == nil {
			t.Errorf("ParseUIDs(%q) gave no error", bad)
		}
	}
}

func TestParseFlagAndUID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]imap.Flag{"seen": imap.FlagSeen, `\Flagged`: imap.FlagFlagged, "ANSWERED": imap.FlagAnswered,
		"deleted": imap.FlagDeleted, "Draft": imap.FlagDraft, "$Junk": "$Junk", "work": "work"} {
		if got, err := ParseFlag(in); err != nil || got != want {
			t.Errorf("ParseFlag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", `\Bogus`, "two words", "(x)", "é", "a\x00"} {
		if _, err := ParseFlag(bad); err == nil {
			t.Errorf("ParseFlag(%q) gave no error", bad)
		}
	}
	if n, err := ParseUID("42"); err != nil || n != 42 {
		t.Errorf("ParseUID(42) = %d, %v", n, err)
	}
	for _, bad := range []string{"", "0", "1:2", "x", "4294967296"} {
		if _, err := ParseUID(bad); err == nil {
			t.Errorf("ParseUID(%q) gave no error", bad)
		}
	}
}
