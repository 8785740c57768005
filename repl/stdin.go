package repl

import (
	"io"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"rtm/store/prefetch"
)

// A pipe on stdin is read through a non-blocking file description of
// rtm's own, with raw read(2) calls inside the poller's callbacks, as
// proto reads its sockets (proto/rawio.go). A read made the usual way
// tells the Go scheduler it may block, and the first one after the
// process has been idle wakes the runtime's monitor thread (sysmon),
// which then polls every 20 µs, about every 100 µs in practice, for 50
// rounds before it backs off: a server replaying a burst of lines paid
// for some 50 such wake-ups in the first milliseconds, each preempting
// the replay (BENCHMARKS.md, B9). A read that cannot block need not say
// so. The description is opened anew (/proc/self/fd/N) so that
// O_NONBLOCK never reaches the shell or the program that shares stdin's
// own description.

// pipeInput reads a pipe through a non-blocking description of its own.
type pipeInput struct {
	f  *os.File // registered with the poller: it was opened O_NONBLOCK
	rc syscall.RawConn
	// reach is how much of a read buffer one read can fill: the pipe's
	// capacity and a page. The first Read faults that much of its buffer
	// in (prefetch.Pages) before it waits for input, rather than inside
	// the kernel's copy of the first lines, a fault per 4 KiB.
	reach   int
	faulted bool
}

// stdinReader is what plain input on stdin is read with: a pipe or FIFO
// as a pipeInput, anything else (a file, a socket) or a pipe that cannot
// be opened again (no /proc, another user's pipe) as os.Stdin.
func stdinReader() io.Reader {
	if p := openPipe(0); p != nil {
		return p
	}
	return os.Stdin
}

// openPipe opens the pipe on fd again, non-blocking; nil if fd is not a
// pipe or cannot be opened.
func openPipe(fd int) *pipeInput {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil
	}
	own, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(own), "<stdin>")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	capacity, err := unix.FcntlInt(uintptr(own), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		capacity = 64 << 10 // Linux's default
	}
	return &pipeInput{f: f, rc: rc, reach: capacity + os.Getpagesize()}
}

// Read reads what the pipe holds, waiting in the poller while it is
// empty; io.EOF once every writer has closed it.
func (p *pipeInput) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !p.faulted {
		p.faulted = true
		prefetch.Pages(b[:min(len(b), p.reach)])
	}
	var n int
	var errno syscall.Errno
	err := p.rc.Read(func(fd uintptr) bool {
		r, _, e := syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		n, errno = int(r), e
		return e != unix.EAGAIN && e != unix.EINTR
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, &os.PathError{Op: "read", Path: "<stdin>", Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// SyscallConn lets inputPending ask how many bytes wait.
func (p *pipeInput) SyscallConn() (syscall.RawConn, error) { return p.rc, nil }

// Close closes rtm's own description; stdin stays open.
func (p *pipeInput) Close() error { return p.f.Close() }
