// Package proto owns the wire between an rtm server and its clients: the
// packet and record format (wire.go: a record is one entry.Change), the
// server's one way in for every change and its fan-out to every client
// (apply.go, origin.go, server.go, serverconn.go, changelog.go), the
// client's session, which keeps a local copy of the tables and hands what
// it applies to its subscribers (client.go, clienttables.go), and the
// requests by which a client changes the tables or asks what only the
// server knows (reply.go, request.go, serverrequest.go). Server also owns
// the store while it runs: Start opens it, Close syncs and releases it.
// It knows nothing of the command language nor of the kernel: those are
// a source and a subscriber that repl/server and repl/client wire in.
//
// Invariants:
//
//   - SOCK_SEQPACKET, one message per packet, never an empty one. Every
//     packet starts with a 16-byte versioned header; a batch carries many
//     records. A malformed, truncated, oversized or out-of-order packet
//     (errors.Is(err, ErrProtocol)) closes the connection it came from,
//     and only that one.
//   - One order, one door. Every change, whatever its origin (the prompt,
//     a client's request, the kernel), is one entry.Change made by
//     Server.Apply under the server's mutex: the store is written first,
//     then the change is appended to the log, then idle writers are
//     woken; a source with more changes waiting holds them (Origin.Hold)
//     and wakes the writers once a packet's worth is ready or when it
//     would wait, and a sync wakes them before it waits. An Origin checks
//     its source's permission and counts what it made, once per change.
//     A MAC delete is published after the store has
//     dropped the key, so a client holding the key reads "not found",
//     never another MAC's address.
//   - Snapshot plus changes, no gap and no duplicate. A snapshot is taken
//     under the same mutex and ends with the sequence number of the last
//     change it contains; the log continues from exactly there. Its end
//     also says how many changes the log held past it (a shared snapshot
//     is older than the head): a client's subscribers get the tables only
//     with those applied, so they never see the tables go back in time.
//   - The server never blocks on a client. The log is a ring of chunks
//     appended once, already encoded; each client's writer goroutine
//     copies spans of it straight into packets at the client's pace. A
//     client that falls off the ring gets a fresh snapshot, and one that
//     takes none of a snapshot no longer shared lets it go (sendHeld):
//     server memory is bounded whatever the clients do, and no lock of
//     the server's is held while a socket is written. (A connection's
//     own requests lock is held while a request's reply is written, and
//     its goodbye waits on it: that write is bounded by the goodbye's
//     deadline.) A chunk's buffer is reused only once every writer has
//     said it is past it.
//   - Acknowledged sequence numbers tell the server each client's lag
//     (show clients, sync). A client that sees a gap never guesses: it
//     asks for a fresh snapshot.
//   - Credentials come from SO_PEERCRED, never from a message: the uid
//     decides who may connect, the pid is what show clients prints.
//   - A malformed request changes nothing: a client's request is decoded
//     whole before its first change is made. Its changes are made in order
//     through the client's Origin, each refusal reported by its index;
//     with FlagBail the first refusal stops it and the later requests of
//     its epoch. A query never changes the tables; a sync waits in a
//     goroutine of its own, one at a time per client (a new sync ends the
//     one before and waits for its answer), for at most an hour.
//   - Trust both ways, on descriptors held (trust.go). The directory of
//     a socket and every one above it can be changed only by the user or
//     root, or are sticky; the runtime directory (SocketDir) is the
//     user's alone. A client checks the server's uid with SO_PEERCRED on
//     its own end before it says hello (its own uid, root, or one of
//     ClientOptions.ServerUIDs), and maps only a store that uid owns and
//     nobody else can write. A failed check ends the session as a
//     refusal does: errors.Is(err, ErrRefused).
//   - A client keeps its tables through a lost server and reconnects with
//     backoff; a server quitting cleanly says goodbye and its clients end.
//     It answers every request it applied before the goodbye and applies
//     none after it (FlagFinal), so a request with no answer then was not
//     applied (ErrNotApplied); a refusal (uid, version, name) ends a
//     client instead of a retry.
//     A server with no room, or no file descriptor left (Serve keeps a
//     spare to say so), says so with FlagRetry (ErrBusy): a client that
//     waits for the server tries again. A uid that may only read is
//     admitted only while more than an eighth of the places are free: the
//     last eighth is kept for the uids that may write. The same holds for
//     the places of connections that only ask (admitAsker).
//   - A reader's request is refused change by change, and its answer is
//     written as it is made, a packet at a time: how big a request it
//     sends does not decide how much of the server's memory it holds.
package proto
