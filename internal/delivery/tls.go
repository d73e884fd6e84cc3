package delivery

import (
	"crypto/tls"
	"errors"
	"syscall"
)

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLS1.3"
	case tls.VersionTLS12:
		return "TLS1.2"
	}
	return tls.VersionName(v)
}

func tlsCipher(c uint16) string { return tls.CipherSuiteName(c) }

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
