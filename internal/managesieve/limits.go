package managesieve

import (
	"errors"
	"net/netip"

	"posthorn/internal/connlimit"
)

// admit counts a new connection from ip (connlimit). It returns a release
// func, or the answer to refuse the connection with.
func admit(l *connlimit.Limiter, ip netip.Addr) (release func(), refuse *failure) {
	release, err := l.Admit(ip)
	switch {
	case errors.Is(err, connlimit.ErrPerAddr):
		return nil, errTooManyForIP
	case err != nil:
		return nil, errTooBusy
	}
	return release, nil
}
