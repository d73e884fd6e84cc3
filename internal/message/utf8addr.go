package message

import (
	"fmt"
	"strings"
)

// EncodeUTF8AddrXtext encodes an address of type utf-8 for ORCPT and a
// DSN's Original-Recipient (RFC 6533 §3, utf-8-addr-xtext): what is not
// printable ASCII, and "+", "=" and "\", as \x{HEX}.
func EncodeUTF8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > 0x20 && r < 0x7f && r != '+' && r != '=' && r != '\\' {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\x{%X}`, r)
	}
	return b.String()
}

// originalRecipient is an ORCPT value as a message/delivery-status field
// holds it: an address of type utf-8 encoded (RFC 6533 §3; this package
// writes no message/global-delivery-status), others as they are.
func originalRecipient(orcpt string) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	if !ok || !strings.EqualFold(typ, "utf-8") {
		return orcpt
	}
	return typ + ";" + EncodeUTF8AddrXtext(addr)
}
