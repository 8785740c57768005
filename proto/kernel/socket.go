package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// conn is one NETLINK_ROUTE socket, bound in the network namespace of
// the thread that opened it. It is non-blocking under Go's poller, so a
// close from another goroutine ends a blocked read instead of leaving a
// goroutine stuck in recvmsg (netlink sockets cannot be shut down).
type conn struct {
	f   *os.File
	rc  syscall.RawConn
	pid uint32 // port id the kernel gave the socket
	seq uint32 // last sequence number used in a request
	buf []byte
	// sendBuf is reused for batches of requests.
	sendBuf []byte
}

// recvBufSize is larger than any datagram the kernel sends: dump batches
// are capped at 32 KiB, notifications are far smaller.
const recvBufSize = 64 << 10

// errTruncated says a datagram did not fit the receive buffer.
var errTruncated = errors.New("netlink datagram truncated")

// openConn opens a socket in the calling thread's network namespace,
// subscribed to the given RTNLGRP_* groups.
func openConn(groups ...uint32) (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	c, err := setupConn(fd, groups)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func setupConn(fd int, groups []uint32) (*conn, error) {
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	for _, g := range groups {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(g)); err != nil {
			return nil, fmt.Errorf("join netlink group %d: %w", g, err)
		}
	}
	// Errors carry the kernel's reason as text and not the whole request:
	// a batch of refusals then costs little receive buffer.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("netlink socket name: %w", err)
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return nil, fmt.Errorf("netlink socket name: unexpected %T", sa)
	}
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	return &conn{f: f, rc: rc, pid: nsa.Pid, buf: make([]byte, recvBufSize)}, nil
}

// setRecvBuffer asks for n bytes of receive buffer: SO_RCVBUFFORCE when
// the process may exceed net.core.rmem_max (CAP_NET_ADMIN), else
// SO_RCVBUF, which the kernel caps. force=false skips the privileged try,
// for callers that want a small buffer on purpose.
func (c *conn) setRecvBuffer(n int, force bool) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		if force {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n); serr == nil {
				return
			}
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set netlink receive buffer to %d: %w", n, serr)
	}
	return nil
}

// close ends the socket; a read blocked in another goroutine returns.
func (c *conn) close() error { return c.f.Close() }

// send writes one datagram (one or more netlink messages) to the kernel.
func (c *conn) send(b []byte) error {
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("netlink send: %w", serr)
	}
	return nil
}

// recv reads the next datagram from the kernel; the slice is valid until
// the next recv. unix.ENOBUFS means the socket overflowed and multicast
// messages were dropped; the socket stays usable.
func (c *conn) recv() ([]byte, error) {
	for {
		var (
			n, flags int
			from     unix.Sockaddr
			rerr     error
		)
		err := c.rc.Read(func(fd uintptr) bool {
			n, _, flags, from, rerr = unix.Recvmsg(int(fd), c.buf, nil, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return nil, err
		}
		if rerr != nil {
			return nil, rerr
		}
		if flags&unix.MSG_TRUNC != 0 {
			return nil, errTruncated
		}
		// Only the kernel (port 0) speaks for the kernel.
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		return c.buf[:n], nil
	}
}

// drain discards every datagram queued on the socket, and any pending
// overflow error, without waiting for more.
func (c *conn) drain() error {
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			_, _, _, _, e := unix.Recvmsg(int(fd), c.buf, nil, unix.MSG_DONTWAIT)
			switch e {
			case nil, unix.ENOBUFS:
			case unix.EAGAIN:
				return true
			default:
				rerr = e
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	return rerr
}

// nextSeq returns a fresh sequence number for a request.
func (c *conn) nextSeq() uint32 {
	c.seq++
	return c.seq
}

// errDumpInterrupted says the kernel's table changed during a dump, so
// the dump may have missed or doubled entries.
var errDumpInterrupted = errors.New("netlink dump interrupted by a concurrent change")

// dump sends a NLM_F_DUMP request of type typ with the given fixed
// header and calls fn for every reply message. Messages from earlier
// requests are skipped by sequence number. An fn error stops fn being
// called but the dump is still read to its end so the socket stays in
// step; the first error is returned. errDumpInterrupted is returned
// after a complete but possibly inconsistent dump.
func (c *conn) dump(typ uint16, hdr []byte, fn func(m message) error) error {
	seq := c.nextSeq()
	req := make([]byte, unix.NLMSG_HDRLEN+nlAlign(len(hdr)))
	putHeader(req, typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
	copy(req[unix.NLMSG_HDRLEN:], hdr)
	if err := c.send(req); err != nil {
		return err
	}
	var first error
	intr := false
	for {
		b, err := c.recv()
		if errors.Is(err, unix.ENOBUFS) {
			// Part of the dump was dropped; the caller dumps again, and
			// skips what is left of this one by its sequence number.
			return errDumpInterrupted
		}
		if err != nil {
			return fmt.Errorf("netlink dump: %w", err)
		}
		done := false
		perr := forMessages(b, func(m message) error {
			if m.seq != seq || m.pid != c.pid {
				return nil
			}
			if m.flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				done = true
				if len(m.data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.data)); e < 0 && first == nil {
						first = fmt.Errorf("netlink dump: %w", syscall.Errno(-e))
					}
				}
			case unix.NLMSG_ERROR:
				done = true
				if e := decodeError(m); e != nil && first == nil {
					first = fmt.Errorf("netlink dump: %w", e)
				}
			default:
				if first == nil {
					first = fn(m)
				}
			}
			return nil
		})
		if perr != nil && first == nil {
			first = perr
		}
		if done {
			break
		}
	}
	if first == nil && intr {
		first = errDumpInterrupted
	}
	return first
}

// putHeader writes a netlink message header for a message of len(b) bytes.
func putHeader(b []byte, typ, flags uint16, seq uint32) {
	ne := binary.NativeEndian
	ne.PutUint32(b[0:4], uint32(len(b)))
	ne.PutUint16(b[4:6], typ)
	ne.PutUint16(b[6:8], flags)
	ne.PutUint32(b[8:12], seq)
	ne.PutUint32(b[12:16], 0)
}
