package managesieve

// Response codes (RFC 5804 §1.3), as they go between the parentheses.
// SASL and TAG carry a string and are built where they are sent. Not
// sent: AUTH-TOO-WEAK (no identity is barred from a mechanism we offer),
// REFERRAL (no other server) and WARNINGS (Check reports errors only).
const (
	codeEncryptNeeded = "ENCRYPT-NEEDED"    // AUTHENTICATE before TLS
	codeQuota         = "QUOTA"             // storage quota
	codeMaxScripts    = "QUOTA/MAXSCRIPTS"  // number of scripts
	codeMaxSize       = "QUOTA/MAXSIZE"     // size of one script
	codeTransition    = "TRANSITION-NEEDED" // credentials need an update for this mechanism
	codeTryLater      = "TRYLATER"          // temporary server failure
	codeActive        = "ACTIVE"            // DELETESCRIPT of the active script
	codeNonexistent   = "NONEXISTENT"       // no script of that name
	codeExists        = "ALREADYEXISTS"     // RENAMESCRIPT onto an existing name
)

// failure is a NO or BYE response (RFC 5804 §4 response-nobye): an
// optional response code and text for the client (generic: details go to
// the log). After a BYE the server closes the connection.
type failure struct {
	bye  bool
	code string
	text string
}

// line returns the whole response with its CRLF. The text goes as a
// string, so backend text (a CheckError) cannot break the framing.
func (f *failure) line() string {
	b := []byte("NO")
	if f.bye {
		b = []byte("BYE")
	}
	if f.code != "" {
		b = append(append(append(b, " ("...), f.code...), ')')
	}
	b = appendString(append(b, ' '), f.text)
	return string(append(b, "\r\n"...))
}

// Input and protocol errors.
var (
	errLineTooLong    = &failure{text: "Line too long"}
	errBareLF         = &failure{text: "Lines must end with CRLF"}
	errBadChars       = &failure{text: "Invalid characters in command"}
	errUnknown        = &failure{text: "Unknown command"}
	errWrongState     = &failure{text: "Command not valid in this state"}
	errSyntax         = &failure{text: "Syntax error"}
	errStringTooLong  = &failure{text: "String too long"}
	errScriptTooLarge = &failure{code: codeMaxSize, text: "Script too large"}
	errTooManyErrors  = &failure{bye: true, text: "Too many errors"}
	// A literal the session will not even discard (maxDiscard).
	errLiteralTooLarge = &failure{bye: true, code: codeMaxSize, text: "Literal too large"}
)

// Session ends decided by the server.
var (
	errShutdown     = &failure{bye: true, code: codeTryLater, text: "Server shutting down"}
	errInternal     = &failure{bye: true, code: codeTryLater, text: "Internal error"}
	errTimeout      = &failure{bye: true, text: "Disconnected for inactivity"}
	errTooBusy      = &failure{bye: true, code: codeTryLater, text: "Too many connections, try again later"}
	errTooManyForIP = &failure{bye: true, code: codeTryLater, text: "Too many connections from your address"}
)

// Authentication.
var (
	// RFC 5804 §2.1: a mechanism that would expose the password (and the
	// session) without TLS is refused with ENCRYPT-NEEDED; we refuse all.
	errNeedTLS      = &failure{code: codeEncryptNeeded, text: "TLS required, use STARTTLS first"}
	errAuthFailed   = &failure{text: "Authentication failed"}
	errAuthSyntax   = &failure{text: "Malformed authentication response"}
	errAuthCanceled = &failure{text: "Authentication canceled"}
	errBase64       = &failure{text: "Invalid base64"}
	errMechanism    = &failure{text: "Unsupported authentication mechanism"}
	errTransition   = &failure{code: codeTransition, text: "Log in once with another mechanism to enable this one"}
	errBlocked      = &failure{bye: true, code: codeTryLater, text: "Too many failed logins, try again later"}
	errAuthTemp     = &failure{bye: true, code: codeTryLater, text: "Temporary authentication failure, try again later"}
	errOpen         = &failure{code: codeTryLater, text: "Cannot open your scripts, try again later"}
	errTLSActive    = &failure{text: "TLS already active"}
)

// Script commands.
var (
	errNoScript   = &failure{code: codeNonexistent, text: "No such script"}
	errActive     = &failure{code: codeActive, text: "Script is active"}
	errExists     = &failure{code: codeExists, text: "A script with that name exists"}
	errQuota      = &failure{code: codeQuota, text: "Quota exceeded"}
	errMaxScripts = &failure{code: codeMaxScripts, text: "Too many scripts"}
	errBackend    = &failure{code: codeTryLater, text: "Temporary failure, try again later"}
)
