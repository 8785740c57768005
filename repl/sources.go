package repl

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sources is the chain of script files being read, innermost last: the
// interpreter's, and the scenario runner's. It refuses a file already in
// the chain, one that sources itself directly or not, and names the
// cycle. Files are told apart by identity, not by name, so a cycle
// through another spelling of a path is still one.
type Sources struct {
	files []sourceFile
	// Stopped, if set, says that the command reading ends (Ctrl-C, a
	// signal): a FIFO waiting for its writer gives up then.
	Stopped func() bool
}

// ErrSourceStopped is Open's error when Stopped ended its wait for a
// FIFO's writer.
var ErrSourceStopped = errors.New("stopped while waiting for a writer")

type sourceFile struct {
	name string
	info os.FileInfo
}

// Open opens path as the innermost file of the chain; Pop ends it. The
// open never waits: a FIFO is opened without a writer (a plain open
// would wait for one, out of reach of Ctrl-C and of every signal but
// SIGKILL), and Open then waits for its first bytes, or its writer's
// end, until Stopped says to give up.
func (c *Sources) Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && info.IsDir() {
		err = fmt.Errorf("%s is a directory; want a script file", path)
	}
	if err == nil && info.Mode()&os.ModeNamedPipe != 0 {
		err = c.waitWriter(f)
	}
	for i := 0; err == nil && i < len(c.files); i++ {
		if os.SameFile(c.files[i].info, info) {
			chain := make([]string, 0, len(c.files)-i+1)
			for _, g := range c.files[i:] {
				chain = append(chain, g.name)
			}
			err = fmt.Errorf("%s: cycle: %s -> %s", path, strings.Join(chain, " -> "), path)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	c.files = append(c.files, sourceFile{name: path, info: info})
	return f, nil
}

// Pop ends the innermost file.
func (c *Sources) Pop() { c.files = c.files[:len(c.files)-1] }

// Clone returns a chain that starts as c and goes its own way.
func (c *Sources) Clone() Sources {
	return Sources{files: append([]sourceFile(nil), c.files...), Stopped: c.Stopped}
}

// waitWriter waits until the FIFO f has bytes to read or its writer has
// come and gone: a read before then would find no writer and take it
// for the end.
func (c *Sources) waitWriter(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var n int
		var perr error
		rc.Control(func(fd uintptr) {
			n, perr = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
		})
		switch {
		case perr != nil && !errors.Is(perr, unix.EINTR):
			return perr
		case n > 0:
			return nil
		case c.Stopped != nil && c.Stopped():
			return ErrSourceStopped
		}
	}
}
