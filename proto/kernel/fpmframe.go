package kernel

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// The FPM stream (FRR's fpm/fpm.h): frames of a 4-byte header, then the
// payload.
//
//	0      1      2             4
//	+------+------+-------------+----------------------------+
//	| ver  | type | length (BE) | netlink messages ...       |
//	+------+------+-------------+----------------------------+
//
// Version is 1; type 1 is netlink, the only one zebra's dplane_fpm_nl
// sends (type 2, protobuf, came from the older zebra_fpm module); length
// counts the header too. The netlink messages are those zebra would send
// the kernel: RTM_NEWROUTE / RTM_DELROUTE, RTM_NEWNEXTHOP /
// RTM_DELNEXTHOP, and others rtm ignores (MPLS, EVPN MACs).
const (
	fpmHeaderLen   = 4
	fpmVersion     = 1
	fpmTypeNetlink = 1
	fpmTypeProto   = 2
)

// fpmFrameLen reads the header at the start of b: the length of the
// whole frame, or 0 if b holds less than a header. Anything but a
// version 1 netlink frame is an error: the stream cannot be followed.
func fpmFrameLen(b []byte) (int, error) {
	if len(b) < fpmHeaderLen {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	switch {
	case b[0] != fpmVersion:
		return 0, fmt.Errorf("%w: FPM version %d, want 1", errMalformed, b[0])
	case b[1] == fpmTypeProto:
		return 0, fmt.Errorf("%w: FPM protobuf frame: rtm reads netlink frames (zebra -M dplane_fpm_nl, not -M fpm)", errMalformed)
	case b[1] != fpmTypeNetlink:
		return 0, fmt.Errorf("%w: FPM frame type %d, want 1 (netlink)", errMalformed, b[1])
	case n < fpmHeaderLen:
		return 0, fmt.Errorf("%w: FPM frame length %d", errMalformed, n)
	}
	return n, nil
}

// fpmMessage is one message of a frame that rtm applies.
type fpmMessage struct {
	typ   uint16
	route kroute
	nh    knexthop
}

// decodeFPM decodes the netlink messages of one frame's payload,
// appending them to msgs. A frame is decoded whole before any of it is
// applied: a malformed one changes nothing.
func decodeFPM(b []byte, msgs []fpmMessage) ([]fpmMessage, error) {
	err := forMessages(b, func(m message) error {
		switch m.typ {
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			r, err := decodeRoute(m.data)
			if err != nil {
				return err
			}
			msgs = append(msgs, fpmMessage{typ: m.typ, route: r})
		case unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
			nh, err := decodeNexthop(m.data)
			if err != nil {
				return err
			}
			msgs = append(msgs, fpmMessage{typ: m.typ, nh: nh})
		}
		return nil
	})
	return msgs, err
}
