package proto

import (
	"encoding/json"
	"fmt"
	"time"
)

// askTime bounds a connection that only asks (Ask), at both ends.
const askTime = 5 * time.Second

// Ask asks the server at socket one question without subscribing: it
// says hello as a connection that wants no snapshot and no changes
// (FlagQueryOnly), after the checks every client makes of who runs the
// server, and decodes the JSON answer into v. rtm ls asks a live server
// where its store is.
func Ask(socket string, trusted []uint32, q Query, v any) error {
	uc, _, _, _, err := handshake(socket, "ask", trusted, FlagQueryOnly, time.Time{})
	if err != nil {
		return err
	}
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(askTime))
	if err := writePacket(uc, Header{Kind: KindQuery, Seq: 1}, []byte{byte(q)}); err != nil {
		return fmt.Errorf("ask %s: %w", socket, err)
	}
	buf := make([]byte, MaxPacket+1)
	var reply []byte
	for {
		body, h, err := readPacket(uc, buf)
		switch {
		case err != nil:
			return fmt.Errorf("ask %s: %w", socket, err)
		case h.Kind != KindReply || h.Seq != 1:
			continue // a server's goodbye, or anything but the answer
		case len(reply)+len(body) > maxReply:
			return fmt.Errorf("ask %s: %w: reply larger than %d bytes", socket, ErrProtocol, maxReply)
		}
		reply = append(reply, body...)
		if h.Flags&FlagMore == 0 {
			break
		}
	}
	r, err := decodeReply(reply)
	if err != nil {
		return fmt.Errorf("ask %s: %w", socket, err)
	}
	if len(r.Failures) > 0 {
		return fmt.Errorf("ask %s: %s", socket, r.Failures[0].Msg)
	}
	return json.Unmarshal(r.Output, v)
}
