package sieve

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxMailboxName bounds a fileinto mailbox name, in octets, as IMAP
// CREATE does.
const MaxMailboxName = 1024

// ValidMailbox checks a fileinto name (RFC 5228 §4.1, RFC 5490 §3.2)
// by the rule IMAP CREATE applies (internal/imap validName): valid
// UTF-8, "/" separated parts that are neither empty, "." nor "..", none
// beginning with "~", no control character and no wildcard ('%', '*').
// A script must not make a mailbox a client could not.
func ValidMailbox(name string) error {
	switch {
	case name == "" || len(name) > MaxMailboxName:
		return fmt.Errorf("mailbox name empty or longer than %d octets", MaxMailboxName)
	case !utf8.ValidString(name):
		return errors.New("mailbox name is not UTF-8")
	}
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." || p == ".." || strings.HasPrefix(p, "~") {
			return fmt.Errorf("mailbox name has an empty, \".\", \"..\" or \"~\" part: %q", name)
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '%' || r == '*' {
			return fmt.Errorf("mailbox name contains %U", r)
		}
	}
	return nil
}
