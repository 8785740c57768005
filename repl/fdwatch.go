package repl

// Watching the ends of a session: an end of file typed at the terminal
// while a command runs, a reader of stdout gone.

import (
	"slices"

	"golang.org/x/sys/unix"
)

// watchEOF watches the terminal on fd while a command typed at the prompt
// runs. The terminal is out of raw mode then, so Ctrl-D leaves an end of
// file for the next read, which readline would only see once the command
// is over: a command waiting for a server that is down, or a sync held up
// by a stopped client, would keep the person from quitting. So the watch
// reads what is typed meanwhile, a line at a time as the terminal gives
// it: a whole line is typed ahead, and goes to typedAhead for the next
// prompt; an empty read is Ctrl-D on an empty line, and a line without
// its newline was cut short by Ctrl-D: either interrupts the command (as
// Ctrl-C does), and the prompt quits after it. The cut line is not run
// (readline would take it as entered). What was typed before the
// terminal left raw mode (the rest of a long paste) is typed ahead
// whatever it ends with: the terminal gives it as it came, returns as
// '\r' and a last line unfinished. The returned stop ends the watch and
// says whether an end of file was seen.
func watchEOF(fd int, interrupt func(), typedAhead func([]byte)) (stop func() bool) {
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC); err != nil {
		return func() bool { return false }
	}
	// What waits now was typed before the terminal left raw mode: counted
	// here, as the command starts, not when the goroutine gets to run,
	// by which time a line cut by Ctrl-D may have joined it.
	raw, _ := unix.IoctlGetInt(fd, unix.TIOCINQ)
	seen := make(chan bool, 1)
	go func() {
		seen <- waitEOF(fd, wake[0], raw, interrupt, typedAhead)
		unix.Close(wake[0])
	}()
	return func() bool {
		unix.Write(wake[1], []byte{0})
		unix.Close(wake[1])
		return <-seen
	}
}

// waitEOF reads the terminal until it gives an end of file, and then
// interrupts, or until wake is readable. Its first raw bytes were typed
// in raw mode.
func waitEOF(fd, wake, raw int, interrupt func(), typedAhead func([]byte)) bool {
	fds := []unix.PollFd{{Fd: int32(wake), Events: unix.POLLIN}, {Fd: int32(fd), Events: unix.POLLIN}}
	buf := make([]byte, 4096) // a terminal's line holds 4,095 bytes and its newline
	for {
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return false
		}
		if fds[0].Revents != 0 {
			return false
		}
		if ev := fds[1].Revents; ev != 0 {
			n, err := unix.Read(fd, buf)
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			if n > 0 && raw > 0 {
				raw -= n
			} else if err != nil || n == 0 || buf[n-1] != '\n' && buf[n-1] != '\r' {
				interrupt()
				return true
			}
			typedAhead(slices.Clone(buf[:n]))
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
