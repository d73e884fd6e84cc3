package imap

import "net"

// ServeAuthenticated runs a session on nc as if u had logged in over TLS,
// for fuzzing whole sessions. It returns when the session ends.
func ServeAuthenticated(s *Server, nc net.Conn, u User) {
	c := newConn(s, nc)
	c.tls, c.user, c.state = true, u, stateAuth
	s.wg.Add(1)
	defer s.wg.Done()
	c.serve()
}
