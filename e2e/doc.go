// Package e2e holds the end-to-end tests: the built posthorn binary runs as
// a subprocess on 127.0.0.1 with a data directory of its own, and clients
// that nobody on this project wrote (swaks, curl, mutt, Python's smtplib
// and mailbox) drive it and read what it delivered.
//
// A missing client is a test failure, never a skip: scripts/test installs
// every one of them. Each test starts its own server, so they run in
// parallel; every server and client is stopped by its process id.
//
// The kill -9 tests (TestCrashKill9, TestCrashMixedKill9,
// TestFetchKill9Resume) draw the moments of their kills from a new seed
// on every run and log it; POSTHORN_KILL_SEED=N repeats a schedule:
//
//	go test ./e2e -run Kill9 -count=5 -v      # five new schedules
//	POSTHORN_KILL_SEED=12345 go test ./e2e -run Kill9 -v
package e2e
