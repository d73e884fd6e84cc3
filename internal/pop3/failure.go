package pop3

// Response codes (RFC 2449 §8), in the brackets they are sent in.
const (
	codeAuth    = "[AUTH]"     // RFC 3206 §5: the credentials are the problem
	codeSysTemp = "[SYS/TEMP]" // RFC 3206 §4: a temporary server problem
	codeInUse   = "[IN-USE]"   // RFC 2449 §8.1.2: the maildrop is locked
)

// failure is a "-ERR" response: an optional response code, text for the
// client (generic: details go to the log) and whether the server closes
// the connection after it.
type failure struct {
	code   string
	text   string
	hangup bool
}

func (f *failure) line() string {
	if f.code == "" {
		return "-ERR " + f.text + "\r\n"
	}
	return "-ERR " + f.code + " " + f.text + "\r\n"
}

// Input and protocol errors.
var (
	errLineTooLong   = &failure{text: "line too long"}
	errBareLF        = &failure{text: "lines must end with CRLF"}
	errBadChars      = &failure{text: "invalid characters in command"}
	errUnknown       = &failure{text: "unknown command"}
	errWrongState    = &failure{text: "command not valid in this state"}
	errSyntax        = &failure{text: "syntax error"}
	errTooManyErrors = &failure{text: "too many errors", hangup: true}
)

// Session ends decided by the server.
var (
	errShutdown = &failure{code: codeSysTemp, text: "server shutting down", hangup: true}
	errInternal = &failure{code: codeSysTemp, text: "internal error", hangup: true}
)

// Authentication.
var (
	// RFC 2595 §2.3: no clear-text login without an encryption layer.
	errNeedTLS      = &failure{code: codeAuth, text: "plaintext login disabled, TLS required"}
	errNeedUser     = &failure{text: "send USER first"}
	errAuthFailed   = &failure{code: codeAuth, text: "Authentication failed"}
	errAuthSyntax   = &failure{text: "malformed authentication response"}
	errAuthCanceled = &failure{text: "authentication canceled"}
	errBase64       = &failure{text: "invalid base64"}
	errMechanism    = &failure{text: "unsupported authentication mechanism"}
	errBlocked      = &failure{code: codeSysTemp, text: "too many failed logins, try again later", hangup: true}
	errAuthTemp     = &failure{code: codeSysTemp, text: "temporary authentication failure, try again later", hangup: true}
	errLocked       = &failure{code: codeInUse, text: "mailbox locked by another session", hangup: true}
	errMaildrop     = &failure{code: codeSysTemp, text: "cannot open mailbox, try again later", hangup: true}
	errTLSActive    = &failure{text: "command not permitted when TLS active"}
	errTLSAvailable = &failure{text: "TLS not available"}
)

// TRANSACTION and UPDATE.
var (
	errBadNumber = &failure{text: "invalid message number"}
	errNoSuchMsg = &failure{text: "no such message"}
	errBadCount  = &failure{text: "invalid line count"}
	errRead      = &failure{code: codeSysTemp, text: "cannot read message, try again later"}
	errGone      = &failure{text: "message was deleted by another client"}
	// RFC 1939 §6 would say "some deleted messages not removed"; Commit
	// is all or nothing, so we can say more.
	errCommit = &failure{code: codeSysTemp, text: "could not remove deleted messages, none were removed", hangup: true}
)
