package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The kernel executes every message of a datagram in order and answers a
// message only if it fails or asks for an ack. So a batch goes out as
// one datagram in which only the last message asks for an ack: the
// replies are the errors, in order, then the last message's answer,
// which says the whole batch is done. One round trip per batch instead
// of one per request is what makes installing fast.

// Batch limits: a batch fits the socket's send buffer (default 208 KiB)
// and its worst case of one error per message fits the receive buffer
// asked for in openRequestConn.
const (
	batchMessages     = 256
	batchBytes        = 64 << 10
	requestRecvBuffer = 4 << 20
)

// errLost says the socket overflowed while a batch's answers were read.
var errLost = errors.New("netlink answers lost")

// exchange sends reqs and stores each one's result in errs (nil for
// success). The error return is for the socket itself failing.
func (c *conn) exchange(reqs [][]byte, errs []error) error {
	for start := 0; start < len(reqs); {
		end, size := start, 0
		for end < len(reqs) && end-start < batchMessages && (end == start || size+len(reqs[end]) <= batchBytes) {
			size += nlAlign(len(reqs[end]))
			end++
		}
		err := c.exchangeBatch(reqs[start:end], errs[start:end])
		if errors.Is(err, errLost) {
			// Some errors were dropped: redo one at a time. A request that
			// had succeeded answers again (EEXIST, ESRCH), which the
			// caller already handles.
			for i := start; i < end; i++ {
				if err = c.exchangeBatch(reqs[i:i+1], errs[i:i+1]); err != nil {
					return err
				}
			}
		} else if err != nil {
			return err
		}
		start = end
	}
	return nil
}

func (c *conn) exchangeBatch(reqs [][]byte, errs []error) error {
	ne := binary.NativeEndian
	buf := c.sendBuf[:0]
	first := c.seq + 1
	for i, r := range reqs {
		off := len(buf)
		buf = append(buf, r...)
		for len(buf)%4 != 0 {
			buf = append(buf, 0)
		}
		ne.PutUint32(buf[off+8:], c.nextSeq())
		flags := ne.Uint16(buf[off+6:]) &^ unix.NLM_F_ACK
		if i == len(reqs)-1 {
			flags |= unix.NLM_F_ACK
		}
		ne.PutUint16(buf[off+6:], flags)
		errs[i] = nil
	}
	c.sendBuf = buf
	last := c.seq
	if err := c.send(buf); err != nil {
		return err
	}
	lost, barrier := false, uint32(0)
	for {
		b, err := c.recv()
		if errors.Is(err, unix.ENOBUFS) {
			// Answers were dropped, perhaps the last one: a no-op that
			// asks for an ack marks where this batch's answers end.
			if !lost {
				lost, barrier = true, c.nextSeq()
				noop := make([]byte, unix.NLMSG_HDRLEN)
				putHeader(noop, unix.NLMSG_NOOP, unix.NLM_F_REQUEST|unix.NLM_F_ACK, barrier)
				if err := c.send(noop); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink answers: %w", err)
		}
		done := false
		perr := forMessages(b, func(m message) error {
			if m.typ != unix.NLMSG_ERROR || m.pid != c.pid {
				return nil
			}
			if lost && m.seq == barrier {
				done = true
				return nil
			}
			// A stale answer of an abandoned batch has a sequence
			// number outside this one's window.
			i := m.seq - first
			if i >= uint32(len(reqs)) {
				return nil
			}
			errs[i] = decodeError(m)
			if m.seq == last && !lost {
				done = true
			}
			return nil
		})
		if perr != nil {
			return perr
		}
		if done {
			break
		}
	}
	if lost {
		return errLost
	}
	return nil
}
