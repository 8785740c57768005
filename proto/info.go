package proto

import "time"

// ClientInfo is what the server knows about one connected client; it is
// what `show clients` prints.
type ClientInfo struct {
	ID        uint64    `json:"id"`
	Name      string    `json:"name"`
	PID       int32     `json:"pid"` // from SO_PEERCRED, never from the hello
	UID       uint32    `json:"uid"`
	Connected time.Time `json:"connected"`
	Acked     uint64    `json:"acked"` // last sequence number the client applied
	Lag       uint64    `json:"lag"`   // changes published but not yet acknowledged
	State     string    `json:"state"` // "snapshot", "live", "resync"
}

// Stat is one named counter of `show stats`.
type Stat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}
