package repl

// Watching the ends of a session without reading them: an end of file
// typed at the terminal while a command runs, a reader of stdout gone.

import (
	"golang.org/x/sys/unix"
)

// watchEOF watches the terminal on fd while a command typed at the prompt
// runs. The terminal is out of raw mode then, so Ctrl-D leaves an end of
// file for the next read, which readline would only see once the command
// is over: a command waiting for a server that is down, or a sync held up
// by a stopped client, would keep the person from quitting. Seen now, the
// end of file interrupts the command (as Ctrl-C does), and the prompt
// quits after it. A line typed ahead is left for the next prompt. The
// returned stop ends the watch and says whether an end of file was seen.
func watchEOF(fd int, interrupt func()) (stop func() bool) {
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC); err != nil {
		return func() bool { return false }
	}
	seen := make(chan bool, 1)
	go func() {
		seen <- waitEOF(fd, wake[0], interrupt)
		unix.Close(wake[0])
	}()
	return func() bool {
		unix.Write(wake[1], []byte{0})
		unix.Close(wake[1])
		return <-seen
	}
}

// waitEOF waits until the terminal has an end of file waiting, and then
// interrupts, or until wake is readable.
func waitEOF(fd, wake int, interrupt func()) bool {
	fds := []unix.PollFd{{Fd: int32(wake), Events: unix.POLLIN}, {Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return false
		}
		if fds[0].Revents != 0 {
			return false
		}
		if ev := fds[1].Revents; ev != 0 {
			n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
			if ev&(unix.POLLHUP|unix.POLLERR) != 0 || err == nil && n == 0 {
				interrupt()
				return true
			}
			// A line typed ahead: it is the next prompt's. Wait for the
			// end of the command only.
			fds = fds[:1]
		}
	}
}

// OutputClosed returns a channel closed once the reader of fd has gone
// away (the other end of a pipe closed: POLLERR), so that a process that
// only writes now and then (rtm client --watch | head -1) ends at once,
// not at its next write. It never closes for a file or a terminal.
func OutputClosed(fd int) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(fd)}}
		for {
			if _, err := unix.Poll(fds, -1); err == unix.EINTR {
				continue
			} else if err != nil {
				return
			}
			if fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				close(gone)
			}
			return
		}
	}()
	return gone
}
