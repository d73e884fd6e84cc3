package pop3

import "net"

// ServeOpen runs a session on nc that is already in TRANSACTION with drop,
// for fuzzing.
func ServeOpen(s *Server, nc net.Conn, drop Maildrop) {
	c := newConn(s, nc)
	c.tls, c.drop, c.state = true, drop, stateTrans
	c.msgs = drop.Messages()
	c.deleted = make([]bool, len(c.msgs))
	c.serve()
}
