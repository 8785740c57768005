package proto

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// listen binds a SOCK_SEQPACKET socket at path with the given mode, in
// a directory prepareSocketDir made and checked. A socket file left by a
// dead server is replaced; a live server's is not: the only reliable test
// is to try connecting to it.
func listen(path string, mode os.FileMode) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: file exists and is not a socket; remove it or pick another --socket", path)
		}
		if c, err := net.Dial("unixpacket", path); err == nil {
			defer c.Close()
			// Whose it is, from the kernel: another uid's listener may be
			// no rtm server at all.
			if cred, err := peerCred(c.(*net.UnixConn)); err == nil && int(cred.Uid) != os.Geteuid() {
				return nil, fmt.Errorf("listen %s: %w, or another program: it listens as uid %d (pid %d), not as you; pick another --socket, or have it stopped", path, ErrSocketInUse, cred.Uid, cred.Pid)
			}
			return nil, fmt.Errorf("listen %s: %w", path, ErrSocketInUse)
		} else if errors.Is(err, syscall.EACCES) {
			// Not a dead server's: one this user may not even try.
			owner := fi.Sys().(*syscall.Stat_t).Uid
			return nil, fmt.Errorf("listen %s: a socket of uid %d (mode %04o) is there, which you may not connect to, so it may be live; pick another --socket, or have its owner remove it", path, owner, fi.Mode().Perm())
		} else if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
			// Only a refused connection says nobody listens: a full
			// queue of connections (EAGAIN) is a live server that is
			// busy, or stopped.
			return nil, fmt.Errorf("listen %s: %w, or another program, which does not accept connections now: %v", path, ErrSocketInUse, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	// The umask narrows the mode from the moment of bind, so there is no
	// window in which the socket is open to others; chmod then widens it
	// to exactly mode when a group is allowed.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	return ln, nil
}

// SocketPathFits says whether path fits a Unix socket's address.
func SocketPathFits(path string) bool { return checkSocketLen(path) == nil }

// checkSocketLen refuses a path longer than a Unix socket's address
// holds with its terminating NUL, which bind and connect refuse with a
// bare EINVAL.
func checkSocketLen(path string) error {
	if n := len(unix.RawSockaddrUnix{}.Path) - 1; len(path) > n {
		return fmt.Errorf("%s: %d bytes, and a Unix socket's path holds at most %d: pick a shorter --socket (or a shorter $XDG_RUNTIME_DIR or --name)", path, len(path), n)
	}
	return nil
}

// peerCred returns the credentials the kernel recorded for the peer at
// connect time. They cannot be forged by the peer, unlike anything it
// writes in a message.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = cerr
	}
	return cred, err
}

// setBuffers asks for socket buffers of 256 KiB: room for four full
// 64 KiB batches in flight, which keeps a client's reads streaming (1 and
// 4 MiB gave no more fan-out). A client that stops reading fills it soon
// and its writer falls back on the log's bound, rather than the kernel
// holding megabytes of small packets for it.
func setBuffers(c *net.UnixConn) {
	c.SetWriteBuffer(256 << 10)
	c.SetReadBuffer(256 << 10)
}

// setFirstBuffers gives a client the server has just admitted a send
// buffer that holds one full packet (firstSendBuffer), until its socket
// has taken more than that, which only the client's reading makes room
// for (serverConn.send): a client that never reads then holds about a
// packet of its snapshot in the kernel (two small ones at most), not a
// socket buffer's worth (512 KiB here, where net.core.wmem_max allows
// setBuffers its 256 KiB, doubled). A thousand connections that said
// hello and read nothing pinned half a gigabyte. It reports false if
// the buffer the kernel gave takes no full packet (a kernel that does
// not double the size asked): every send of a full packet would then
// fail. (A net.core.wmem_max under half a packet clamps setBuffers' size
// too: rtm's full packets need a larger one.)
func setFirstBuffers(c *net.UnixConn) bool {
	c.SetWriteBuffer(firstSendBuffer / 2) // the kernel doubles it
	c.SetReadBuffer(256 << 10)
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	size := 0
	rc.Control(func(fd uintptr) { size, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF) })
	return err == nil && size >= firstSendBuffer
}

// firstSendBuffer takes the largest packet (MaxPacket, its header
// included): the kernel takes a packet only if it is at least 32 bytes
// under the buffer's size, and halving and doubling an odd size would
// lose a byte.
const firstSendBuffer = MaxPacket + 32 + 2

// packetReader reads one connection's packets at the server. An idle
// client sends nothing but an ack now and then, so a connection keeps only
// a small buffer of its own and borrows a full one from a pool for the
// rare large packet (a request): a thousand idle clients do not cost a
// thousand 64 KiB buffers. It learns a packet's size before it reads it,
// with MSG_PEEK|MSG_TRUNC, which a SOCK_SEQPACKET socket answers with the
// packet's whole length.
type packetReader struct {
	uc    *net.UnixConn
	rc    syscall.RawConn
	small [smallPacket]byte
	big   *[]byte // borrowed for the packet last read, if it was large
}

// smallPacket holds any packet but a request or a large query answer.
const smallPacket = 512

var bigPackets = sync.Pool{New: func() any { b := make([]byte, MaxPacket+1); return &b }}

func newPacketReader(uc *net.UnixConn) (*packetReader, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &packetReader{uc: uc, rc: rc}, nil
}

// next waits for the next packet and returns it; the body is valid until
// the next call (or release).
func (r *packetReader) next() ([]byte, Header, error) {
	size, err := r.peek()
	if err != nil {
		return nil, Header{}, err
	}
	return r.read(size)
}

// peek waits for the next packet and returns its size, leaving it queued.
func (r *packetReader) peek() (int, error) {
	r.release()
	var size int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		size, errno = recvNoEarlyEOF(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		return !again(errno)
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	case size > MaxPacket:
		return 0, fmt.Errorf("%w (%d bytes)", ErrTooLarge, size)
	}
	return size, nil
}

// read reads the packet peek saw, of size bytes.
func (r *packetReader) read(size int) ([]byte, Header, error) {
	buf := r.small[:]
	if size >= len(buf) {
		r.big = bigPackets.Get().(*[]byte)
		buf = *r.big
	}
	return readPacket(r.uc, buf)
}

// release gives back the buffer borrowed for the last packet.
func (r *packetReader) release() {
	if r.big != nil {
		bigPackets.Put(r.big)
		r.big = nil
	}
}

// quiet reports whether nothing waits to be read on uc.
func quiet(uc *net.UnixConn) bool {
	rc, err := uc.SyscallConn()
	if err != nil {
		return true
	}
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		_, errno = recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
	})
	return errno == unix.EAGAIN
}

// readPacket reads one packet into buf and rejects empty, truncated and
// oversized packets; buf must hold MaxPacket+1 bytes, unless the caller
// knows the packet to be shorter than buf.
func readPacket(c *net.UnixConn, buf []byte) ([]byte, Header, error) {
	n, err := recvPacket(c, buf)
	if err != nil {
		return nil, Header{}, err
	}
	if n == 0 {
		// SOCK_SEQPACKET reports the peer's close as a zero-length read;
		// rtm never sends an empty packet.
		return nil, Header{}, errEOF
	}
	if n > len(buf) || n > MaxPacket {
		return nil, Header{}, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxPacket)
	}
	h, err := ParseHeader(buf[:n])
	if err != nil {
		return nil, Header{}, err
	}
	return buf[HeaderSize:n], h, nil
}

// writePacket sends one packet made of a header and a body in a single
// sendmsg, so the body is never copied.
func writePacket(c *net.UnixConn, h Header, body []byte) error {
	return writePacketLead(c, h, nil, body)
}

// writePacketLead is writePacket with lead, at most 8 bytes, between the
// header and the body: a request's epoch goes out before its changes
// without copying them behind it.
func writePacketLead(c *net.UnixConn, h Header, lead, body []byte) error {
	var hdr [HeaderSize + 8]byte
	PutHeader(hdr[:], h)
	return sendPacket(c, hdr[:HeaderSize+copy(hdr[HeaderSize:], lead)], body)
}
