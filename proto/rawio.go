package proto

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Packets are received and sent by non-blocking system calls made raw,
// inside the poller's RawConn callbacks: the poller still waits when a
// socket is empty or full, and deadlines still hold. A system call made
// the usual way (syscall.Syscall) tells the scheduler it may block, and
// the first one after the process has been idle wakes the runtime's
// monitor thread (sysmon), which then polls every 20 µs for a millisecond
// or more. A non-blocking call cannot block, so it need not say so, and
// a client woken for each packet no longer pays for that polling
// (BENCHMARKS.md, B9).

// recvPacket reads one packet into buf and returns its length; a length
// above len(buf) says the packet was cut (MSG_TRUNC gives the real
// length). A length of 0 is the peer's close.
func recvPacket(c *net.UnixConn, buf []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var errno syscall.Errno
	rerr := rc.Read(func(fd uintptr) bool {
		n, errno = recvNoEarlyEOF(fd, buf, unix.MSG_TRUNC)
		return !again(errno)
	})
	switch {
	case rerr != nil:
		return 0, rerr
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "unixpacket", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
	}
	return n, nil
}

// sendPacket sends hdr and body as one packet: a SOCK_SEQPACKET send
// takes the whole packet or, on a full socket, nothing (EAGAIN).
func sendPacket(c *net.UnixConn, hdr, body []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	iov := [2]unix.Iovec{{Base: unsafe.SliceData(hdr)}, {Base: unsafe.SliceData(body)}}
	iov[0].SetLen(len(hdr))
	iov[1].SetLen(len(body))
	msg := unix.Msghdr{Iov: &iov[0], Iovlen: 2}
	if len(body) == 0 {
		msg.Iovlen = 1
	}
	var errno syscall.Errno
	werr := rc.Write(func(fd uintptr) bool {
		_, _, errno = syscall.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return !again(errno)
	})
	switch {
	case werr != nil:
		return werr
	case errno != 0:
		return &net.OpError{Op: "write", Net: "unixpacket", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
	}
	return nil
}

// recvNoEarlyEOF is recvfrom for a SOCK_SEQPACKET socket, but a close
// never hides a packet sent before it. A non-blocking receive looks for
// a queued packet first and for the peer's shutdown after, so a packet
// queued and a shutdown made between the two looks read as the close,
// with the packet still queued behind it: a goodbye or a refusal lost (1
// in 3,500 sends followed at once by a shutdown, on Linux 6.18). The
// shutdown comes after the packet, so a second look finds it. A second
// 0 is the close; EAGAIN says the first was an empty packet, which rtm
// never sends and takes as the close too.
func recvNoEarlyEOF(fd uintptr, buf []byte, flags int) (int, syscall.Errno) {
	n, errno := recvfrom(fd, buf, flags)
	if n == 0 && errno == 0 {
		if n2, errno2 := recvfrom(fd, buf, flags); n2 > 0 && errno2 == 0 {
			return n2, 0
		}
	}
	return n, errno
}

// recvfrom is recvfrom(2) without a source address, made raw and
// non-blocking (MSG_DONTWAIT is added to flags).
func recvfrom(fd uintptr, buf []byte, flags int) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)),
		uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
	return int(r), errno
}

// again says a non-blocking call found nothing to do yet: the poller
// waits, then the call is made again.
func again(errno syscall.Errno) bool { return errno == unix.EAGAIN || errno == unix.EINTR }
