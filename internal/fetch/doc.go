// Package fetch is posthorn's mail retrieval agent (MRA): it pulls mail
// from remote POP3 and IMAP mailboxes and hands each message to local
// delivery (aliases, Sieve, the store), as fetchmail does, but with these
// guarantees:
//
//   - A message is deleted on the server only after local delivery has
//     returned nil, which means it is on stable storage.
//   - Killing the fetcher at any moment (kill -9, power loss) loses nothing
//     and, after a restart, does not store a message twice.
//   - Every remote IMAP folder can be watched at once with IDLE, one
//     connection per folder.
//
// # What is remembered
//
// Each source has a [State]: an append-only journal of JSON lines in the
// state directory, replayed at start and compacted (written to a temporary
// file, fsynced, renamed over the old one, directory fsynced) when it has
// grown. A lock file keeps two processes off one source.
//
//   - POP3: the UIDLs of messages delivered (or skipped) that are still on
//     the server (RFC 1939 §7 UIDL). A server without UIDL is refused.
//   - IMAP, per folder: UIDVALIDITY, the highest UID handled, the UIDs
//     skipped (too large, refused), and a fingerprint of every delivered
//     message still on the server (RFC 9051 §2.3.1.1: within one
//     UIDVALIDITY, UIDs only grow).
//
// # Exactly once
//
// Every message gets a fetch id, deterministic in the source and the
// message's remote identity: SOURCE/FOLDER/UIDVALIDITY/UID for IMAP and
// SOURCE/pop3/UIDL for POP3 (folder and UIDL percent-escaped). It is
// prepended to the message, under our Received field, as the field
// "X-Posthorn-Fetch: ID". The steps for one message are, in order:
//
//  1. Write a "pending" record (fetch id, time, fingerprint) to the
//     journal and fsync it.
//  2. Deliver. A nil error means the message is durable in the store.
//  3. Write a "done" record (not fsynced: see below).
//  4. Only when keep is false and the done record is written: delete on
//     the server (POP3 DELE + QUIT, IMAP UID STORE \Deleted + UID
//     EXPUNGE), then write a "gone" record.
//
// A crash before 1 leaves nothing: the message is fetched again. A crash
// between 1 and 3 leaves a pending record: the delivery may or may not
// have happened (the store may even have renamed the file into the
// Maildir without committing its index row). On the next run the message
// is fetched again and, because a pending record names it, handed to
// [Resumer.Resume] instead of Deliver: the deliverer brings the index in
// line with the Maildir and stores the message only for the mailbox owners
// that hold no message carrying this fetch id delivered since the pending
// record's time. A crash after 3 finds a done record and never fetches
// the message again. A crash during 4 leaves the message on the server
// with a done record: it is deleted, not delivered, next time. A lost
// done record (power loss, no fsync) is harmless: the pending record is
// still there, fsynced, and step 2 is resumed as above.
//
// The fetch id is read only from the first X-Posthorn-Fetch field of
// messages delivered after the pending time, and we always put ours first,
// so a sender cannot forge a match. A message that already carries an
// X-Posthorn-Fetch field of its own source (fetching a mailbox into
// itself) is a loop: it is skipped and left on the server.
//
// Limits of the argument, all in the crash window between 2 and 3: a
// copy forwarded by an alias or a Sieve redirect goes through the queue
// and cannot be looked up, so it may be sent twice (as with SMTP when a
// 250 is lost); a copy that the user deleted or moved away between the
// crash and the restart is delivered again; a deliverer that is not a
// [Resumer] (or a [unix] mailbox) delivers again.
//
// # UIDVALIDITY
//
// When a folder's UIDVALIDITY changes (RFC 9051 §2.3.1.1), all its UIDs
// are new and the old ones mean nothing. We refetch with dedupe: the
// fingerprints of the messages delivered under the old UIDVALIDITY are
// kept as "legacy", and a message of the new UIDVALIDITY whose fingerprint
// (size, Message-ID, Date, From and Subject) is among them is marked done
// without being delivered again (and deleted, when keep is false). The
// legacy set is dropped when a pass has seen every message. Two different
// messages with the same fingerprint would be taken for one; a message
// changed on the server is taken for a new one. Refusing to fetch, the
// other choice, would stop mail until an operator steps in.
//
// # Connections
//
// Every read and write has a deadline ([Source.Timeout]), except reads
// while an IMAP IDLE is running: IDLE is ended and the folder polled every
// [Source.Interval] (at most every 10 minutes), which also finds dead
// connections. Messages are read into memory up to the maximum message
// size (larger ones are skipped and left on the server, with a warning),
// so a source holds at most one message per connection.
package fetch
