// Package e2e holds the end-to-end tests: the built posthorn binary runs as
// a subprocess on 127.0.0.1 with a data directory of its own, and clients
// that nobody on this project wrote (swaks, curl, mutt, Python's smtplib
// and mailbox) drive it and read what it delivered.
//
// A missing client is a test failure, never a skip: scripts/test installs
// every one of them. Each test starts its own server, so they run in
// parallel; every server and client is stopped by its process id.
package e2e
