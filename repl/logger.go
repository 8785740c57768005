package repl

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Logger is a Console's log for goroutines that must never wait on the
// terminal: a server's connections, its kernel and FPM importers. A
// write to a stderr nobody reads (a pager left paused, Ctrl-S, a stalled
// log shipper) blocks once the pipe is full; through the Console's lock,
// every goroutine that logs would block behind it, and a server would
// stop welcoming clients. So Printf hands the line to one writer
// goroutine and returns at once; lines past its queue are dropped and
// counted, and the count is written once the writer has caught up.
type Logger struct {
	c       *Console
	lines   chan logLine // a nil line: Close's mark
	dropped atomic.Int64
	done    chan struct{}
	// wait is how long Printf waits for its line to be written (0: not
	// at all): a client's few lines then keep their order with what the
	// process writes to stderr itself, unless stderr is stuck.
	wait time.Duration
}

type logLine struct {
	b       []byte
	written chan struct{} // closed once b is written; nil if nobody waits
}

// logQueue is how many lines may wait for the terminal: a burst of
// clients connecting at once, not a log that nobody reads.
const logQueue = 4096

// NewLogger starts the writer of c's log.
func NewLogger(c *Console) *Logger { return NewWaitingLogger(c, 0) }

// NewWaitingLogger is NewLogger whose Printf waits up to wait for its
// line to be written.
func NewWaitingLogger(c *Console, wait time.Duration) *Logger {
	l := &Logger{c: c, lines: make(chan logLine, logQueue), done: make(chan struct{}), wait: wait}
	go l.run()
	return l
}

func (l *Logger) run() {
	defer close(l.done)
	for line := range l.lines {
		if line.b == nil {
			l.sayDropped()
			return
		}
		l.c.Write(line.b)
		if line.written != nil {
			close(line.written)
		}
		if len(l.lines) == 0 {
			// Caught up: the lines dropped came after those written.
			l.sayDropped()
		}
	}
}

func (l *Logger) sayDropped() {
	if n := l.dropped.Swap(0); n > 0 {
		l.c.Printf("(%d log lines dropped: the log's reader fell behind)", n)
	}
}

// Printf queues one message, adding the newline if format lacks it.
func (l *Logger) Printf(format string, args ...any) {
	b := fmt.Appendf(nil, format, args...)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	line := logLine{b: b}
	if l.wait > 0 {
		line.written = make(chan struct{})
	}
	select {
	case l.lines <- line:
	default:
		l.dropped.Add(1)
		return
	}
	if line.written != nil {
		t := time.NewTimer(l.wait)
		defer t.Stop()
		select {
		case <-line.written:
		case <-t.C:
		}
	}
}

// Close writes the lines queued before it, waiting at most timeout for
// the terminal to take them; lines logged after it are dropped.
func (l *Logger) Close(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l.lines <- logLine{}:
	case <-t.C:
		return
	}
	select {
	case <-l.done:
	case <-t.C:
	}
}
