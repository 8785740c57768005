// Package proto owns the wire between an rtm server and its clients: the
// packet and record format (wire.go), the server's fan-out of every change
// to every client (server.go, serverconn.go, log.go), and the client's
// session, which keeps a local copy of the tables (client.go). Server also
// owns the store while it runs: Start opens it, Close syncs and releases
// it.
//
// Invariants:
//
//   - SOCK_SEQPACKET, one message per packet, never an empty one. Every
//     packet starts with a 16-byte versioned header; a batch carries many
//     records. A malformed, truncated, oversized or out-of-order packet
//     (errors.Is(err, ErrProtocol)) closes the connection it came from,
//     and only that one.
//   - One order. Every change goes through the server's mutex: the store
//     is written first, then the change is appended to the log, then idle
//     writers are woken. A MAC delete is published after the store has
//     dropped the key, so a client holding the key reads "not found",
//     never another MAC's address.
//   - Snapshot plus changes, no gap and no duplicate. A snapshot is taken
//     under the same mutex and ends with the sequence number of the last
//     change it contains; the log continues from exactly there.
//   - The server never blocks on a client. The log is a ring of chunks
//     appended once, already encoded; each client's writer goroutine
//     copies spans of it straight into packets at the client's pace. A
//     client that falls off the ring gets a fresh snapshot: server memory
//     is bounded whatever the clients do, and no lock is held while a
//     socket is written.
//   - Acknowledged sequence numbers tell the server each client's lag
//     (show clients, sync). A client that sees a gap never guesses: it
//     asks for a fresh snapshot.
//   - Credentials come from SO_PEERCRED, never from a message: the uid
//     decides who may connect, the pid is what show clients prints.
//   - A client keeps its tables through a lost server and reconnects with
//     backoff; a server quitting cleanly says goodbye and its clients end;
//     a refusal (uid, version, name) ends a client instead of a retry.
package proto
