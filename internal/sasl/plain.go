package sasl

import "bytes"

type plainServer struct {
	verify Verify
	id     string
	asked  bool
}

// NewPlain returns a PLAIN server (RFC 4616).
func NewPlain(verify Verify) Server { return &plainServer{verify: verify} }

func (s *plainServer) Identity() string { return s.id }

func (s *plainServer) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil && !s.asked {
		s.asked = true
		return []byte{}, false, nil // empty challenge: send your credentials
	}
	if len(resp) > MaxResponse {
		return nil, false, ErrTooLong
	}
	// message = [authzid] NUL authcid NUL passwd (RFC 4616 §2)
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return nil, false, ErrSyntax
	}
	id, err := s.verify(string(parts[0]), string(parts[1]), string(parts[2]))
	if err != nil {
		return nil, false, err
	}
	s.id = id
	return nil, true, nil
}

// PlainResponse returns the client's PLAIN message.
func PlainResponse(authz, user, password string) []byte {
	return []byte(authz + "\x00" + user + "\x00" + password)
}
