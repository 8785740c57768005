package proto

import "errors"

// The errors of package proto that callers test with errors.Is.
var (
	// ErrServerQuit ends a session when the server said goodbye.
	ErrServerQuit = errors.New("server quit")
	// ErrRefused is wrapped by the error of a client the server refused
	// (at hello: its uid, its protocol version, its name) or dropped (it
	// broke the protocol). Trying again would only be refused again, so
	// the session ends instead of reconnecting.
	ErrRefused = errors.New("refused by the server")
	// ErrBusy is wrapped by the error of a client the server had no room
	// for: unlike a refusal, it may pass later, and a client that waits
	// for the server (Dial's Wait, a reconnect) tries again.
	ErrBusy = errors.New("the server is busy")
	// ErrSessionEnded is what a client's waits and requests get once its
	// session is over.
	ErrSessionEnded = errors.New("the session ended")
	// ErrNotApplied is wrapped by Reply.Err, with ErrNoReply and the
	// goodbye's QuitError, for a request the server quit before: it said
	// it would apply no more (QuitError.Final), and had not answered it.
	ErrNotApplied = errors.New("not applied")
	// ErrNoReply is wrapped by Reply.Err: the connection was lost before
	// the answer came.
	ErrNoReply = errors.New("the server went away before it answered")
	// ErrSocketInUse means a live server already listens on the socket
	// path.
	ErrSocketInUse = errors.New("socket is in use by a running rtm server")
	// ErrLive refuses to remove an instance a server serves.
	ErrLive = errors.New("a server is running it")
	// ErrNoStore is wrapped by the error of a client whose server
	// answered but whose store is not at the path it gave: removed while
	// the server runs. A server is listening; its store is what is gone.
	ErrNoStore = errors.New("the server's store is not there")
	// ErrCrashed refuses to remove, without force, an instance whose
	// store its server did not close: the next server would repair it.
	ErrCrashed = errors.New("it crashed")

	// errEOF is the peer's close, which ends a session without a fault.
	errEOF = errors.New("connection closed by peer")
)

// QuitError is the server's goodbye: it quit, and said why (Reason,
// "server lab got terminated"). It wraps ErrServerQuit, and
// ErrSessionEnded for the waits and requests it ends.
type QuitError struct {
	Reason string
	// Final says the server answered every request it applied before
	// its goodbye, and applies none after it (FlagFinal): a request with
	// no answer was not applied.
	Final bool
}

func (e *QuitError) Error() string {
	if e.Reason == "" {
		return "the server quit"
	}
	return "the server quit: " + e.Reason
}

func (e *QuitError) Is(target error) bool {
	return target == ErrServerQuit || target == ErrSessionEnded
}

// ErrProtocol is the parent of every error a peer's packets can cause: a
// packet that fails to decode, or one that breaks the order of the
// session, closes the connection it came from, and only that one.
var ErrProtocol = errors.New("protocol violation")

// The protocol errors; errors.Is(err, ErrProtocol) holds for each.
var (
	ErrShort     error = protocolError("packet shorter than its header")
	ErrMagic     error = protocolError("not an rtm packet")
	ErrVersion   error = protocolError("unsupported protocol version")
	ErrTooLarge  error = protocolError("packet larger than the protocol allows")
	ErrMalformed error = protocolError("malformed packet")
)

type protocolError string

func (e protocolError) Error() string        { return string(e) }
func (e protocolError) Is(target error) bool { return target == ErrProtocol }
