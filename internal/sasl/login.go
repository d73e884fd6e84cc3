package sasl

// The LOGIN mechanism is obsolete but still what some clients (Outlook,
// old phones) offer first. Its challenges are fixed strings.
type loginServer struct {
	verify Verify
	step   int
	user   string
	id     string
}

// NewLogin returns a LOGIN server. A client may put the user name in the
// initial response.
func NewLogin(verify Verify) Server { return &loginServer{verify: verify} }

func (s *loginServer) Identity() string { return s.id }

func (s *loginServer) Next(resp []byte) ([]byte, bool, error) {
	if len(resp) > MaxResponse {
		return nil, false, ErrTooLong
	}
	switch s.step {
	case 0:
		s.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		if len(resp) == 0 {
			return nil, false, ErrSyntax
		}
		s.user, s.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		id, err := s.verify("", s.user, string(resp))
		if err != nil {
			return nil, false, err
		}
		s.id = id
		return nil, true, nil
	}
	return nil, false, ErrSyntax
}
