package smtp

import (
	"errors"
	"net/netip"

	"posthorn/internal/connlimit"
)

// Limiter caps concurrent connections in total and per client address
// (connlimit). One Limiter may be shared by several servers.
type Limiter = connlimit.Limiter

// NewLimiter returns a Limiter allowing max connections in all and perIP
// from one address (or IPv6 /64).
func NewLimiter(max, perIP int) *Limiter { return connlimit.New(max, perIP) }

var (
	errTooBusy      = &Error{Code: CodeUnavailable, Enhanced: "4.3.2", Msg: "Too many connections, try again later"}
	errTooManyForIP = &Error{Code: CodeUnavailable, Enhanced: "4.7.0", Msg: "Too many connections from your address"}
)

// admit counts a new connection from ip. It returns a release func, or the
// reply to refuse the connection with.
func admit(l *Limiter, ip netip.Addr) (release func(), refuse *Error) {
	release, err := l.Admit(ip)
	switch {
	case errors.Is(err, connlimit.ErrPerAddr):
		return nil, errTooManyForIP
	case err != nil:
		return nil, errTooBusy
	}
	return release, nil
}
