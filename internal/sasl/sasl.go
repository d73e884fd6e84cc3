// Package sasl implements the SASL mechanisms Posthorn speaks (RFC 4422):
// PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and SCRAM-SHA-256
// (RFC 7677, RFC 5802), server and client side, as state machines without
// I/O. Protocol packages carry the bytes; the caller decides who may log in
// through the verify functions it passes in.
package sasl

import (
	"errors"
)

// Mechanism names.
const (
	Plain       = "PLAIN"
	Login       = "LOGIN"
	ScramSHA256 = "SCRAM-SHA-256"
)

// MaxResponse bounds one client response, decoded (Postfix uses 12288).
const MaxResponse = 12288

// Errors of an exchange.
var (
	// ErrAuthFailed: wrong credentials. Protocols answer with their
	// "authentication failed" reply.
	ErrAuthFailed = errors.New("sasl: authentication failed")
	// ErrSyntax: the client's message is malformed.
	ErrSyntax = errors.New("sasl: malformed response")
	// ErrTooLong: a response over MaxResponse.
	ErrTooLong = errors.New("sasl: response too long")
)

// Server is the server side of one exchange.
type Server interface {
	// Next consumes the client's response (nil when the client sent no
	// initial response) and returns the next challenge. When done is true
	// the exchange succeeded; a non-nil challenge with done is
	// "additional data with success" (SCRAM's server signature), which
	// protocols send as they define. Any error ends the exchange.
	Next(response []byte) (challenge []byte, done bool, err error)
	// Identity returns the authenticated user after success.
	Identity() string
}

// Verify checks a user name and password and returns the canonical
// identity. authz, when not empty, is the identity the client asks to act
// as; implementations refuse it unless it equals the user.
type Verify func(authz, user, password string) (identity string, err error)
