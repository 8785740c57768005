// Package proto owns the wire between an rtm server and its clients: the
// message format, the server's fan-out (Hub) and the client's session.
package proto
