package config

import (
	"fmt"
	"strings"
)

// Addrs returns the addresses service listens on; nil when it is off or is
// not one of [Services].
func (l Listen) Addrs(service string) []string {
	if addrs := l.field(service); addrs != nil {
		return *addrs
	}
	return nil
}

// Set replaces the addresses service listens on. It fails when service is
// not one of [Services].
func (l *Listen) Set(service string, addrs []string) error {
	field := l.field(service)
	if field == nil {
		return fmt.Errorf("set listen addresses: unknown service %q (want one of %s)",
			service, strings.Join(Services, ", "))
	}
	*field = addrs
	return nil
}

// field returns the list of service, or nil for an unknown service.
func (l *Listen) field(service string) *[]string {
	switch service {
	case "smtp":
		return &l.SMTP
	case "submission":
		return &l.Submission
	case "submissions":
		return &l.Submissions
	case "imap":
		return &l.IMAP
	case "imaps":
		return &l.IMAPS
	case "pop3":
		return &l.POP3
	case "pop3s":
		return &l.POP3S
	case "lmtp":
		return &l.LMTP
	case "managesieve":
		return &l.ManageSieve
	case "http":
		return &l.HTTP
	}
	return nil
}
