package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TCP has no SO_PEERCRED, but the kernel knows who owns the other end of
// a connection made on this host: sock_diag (NETLINK_SOCK_DIAG) answers
// an exact lookup of a TCP socket with its owner's uid, as `ss -e` shows
// it. The FPM importer asks for the socket that connected to it.

// inet_diag_req_v2 and inet_diag_msg, laid out by hand: x/sys/unix does
// not have them.
const (
	inetDiagReqLen = 8 + inetDiagIDLen
	inetDiagIDLen  = 48 // sport, dport, src[16], dst[16], if, cookie[2]
	inetDiagUIDOff = 4 + inetDiagIDLen + 12
)

// diagConn is a NETLINK_SOCK_DIAG socket, bound in the network namespace
// of the thread that opened it: the namespace of the sockets it finds.
type diagConn struct{ f *os.File }

func openDiag() (*diagConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	return &diagConn{os.NewFile(uintptr(fd), "sock_diag")}, nil
}

func (d *diagConn) close() error { return d.f.Close() }

// errNoSocket says no socket of this host has that address: the peer is
// on another host.
var errNoSocket = errors.New("no local socket")

// tcpOwner returns the uid that owns the TCP socket whose own address is
// src and whose peer is dst.
func (d *diagConn) tcpOwner(src, dst netip.AddrPort) (uint32, error) {
	uid, _, err := d.tcpSocket(src, dst)
	return uid, err
}

// tcpListener returns the owner's uid and the inode of the socket that
// listens on addr: bound to it or to the wildcard address (the kernel's
// lookup for a connection to addr, with no peer).
func (d *diagConn) tcpListener(addr netip.AddrPort) (uid, inode uint32, err error) {
	zero := netip.IPv4Unspecified()
	if !addr.Addr().Unmap().Is4() {
		zero = netip.IPv6Unspecified()
	}
	return d.tcpSocket(addr, netip.AddrPortFrom(zero, 0))
}

// tcpSocket returns the owner's uid and the inode of the TCP socket whose
// own address is src and whose peer is dst.
func (d *diagConn) tcpSocket(src, dst netip.AddrPort) (uid, inode uint32, err error) {
	src, dst = netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	req := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqLen)
	putHeader(req, unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_REQUEST, 1)
	r := req[unix.NLMSG_HDRLEN:]
	r[0], r[1] = family(src.Addr()), unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:8], ^uint32(0)) // any state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:2], src.Port())
	binary.BigEndian.PutUint16(id[2:4], dst.Port())
	copy(id[4:20], src.Addr().AsSlice())
	copy(id[20:36], dst.Addr().AsSlice())
	binary.NativeEndian.PutUint32(id[40:44], ^uint32(0)) // no cookie
	binary.NativeEndian.PutUint32(id[44:48], ^uint32(0))
	rc, err := d.f.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = unix.Sendto(int(fd), req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); serr != nil {
			return
		}
		buf := make([]byte, 4096)
		n, _, e := unix.Recvfrom(int(fd), buf, 0)
		if e != nil {
			serr = e
			return
		}
		serr = forMessages(buf[:n], func(m message) error {
			switch {
			case m.typ == unix.NLMSG_ERROR:
				if e := decodeError(m); errors.Is(e, unix.ENOENT) {
					return errNoSocket
				} else if e != nil {
					return e
				}
			case m.typ == unix.SOCK_DIAG_BY_FAMILY && len(m.data) >= inetDiagUIDOff+8:
				uid = binary.NativeEndian.Uint32(m.data[inetDiagUIDOff:])
				inode = binary.NativeEndian.Uint32(m.data[inetDiagUIDOff+4:])
				return nil
			}
			return fmt.Errorf("%w: sock_diag answer of type %d, %d bytes", errMalformed, m.typ, len(m.data))
		})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("who owns %s: %w", src, err)
	}
	return uid, inode, nil
}

// portListener finds a TCP socket of this network namespace that
// listens on port, at any address, in /proc/thread-self/net/tcp and tcp6
// (the namespace of this thread, as the netlink sockets'): its
// owner's uid and its inode.
func portListener(port uint16) (uid, inode uint32, ok bool) {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		for _, l := range strings.Split(string(b), "\n")[1:] {
			w := strings.Fields(l)
			if len(w) < 10 || w[3] != "0A" || !strings.HasSuffix(w[1], want) {
				continue
			}
			u, err1 := strconv.ParseUint(w[7], 10, 32)
			n, err2 := strconv.ParseUint(w[9], 10, 32)
			if err1 == nil && err2 == nil {
				return uint32(u), uint32(n), true
			}
		}
	}
	return 0, 0, false
}

// socketHolder returns a process that holds the socket of inode, and its
// name, if this process may read the others' descriptors; pid 0 if not.
func socketHolder(inode uint32) (pid int, name string) {
	procs, _ := os.ReadDir("/proc")
	want := "socket:[" + strconv.FormatUint(uint64(inode), 10) + "]"
	for _, p := range procs {
		n, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + p.Name() + "/fd")
		for _, fd := range fds {
			if l, _ := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name()); l == want {
				comm, _ := os.ReadFile("/proc/" + p.Name() + "/comm")
				return n, strings.TrimSpace(string(comm))
			}
		}
	}
	return 0, ""
}
