package repl

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/chzyer/readline"
)

// progress shows a long replay's advance on a terminal: lines done and
// rate, on one line of stderr, redrawn at most four times a second, and
// only after the replay has run a second. It is never shown on a pipe.
type progress struct {
	w           io.Writer     // nil: not a terminal, never shown
	after       time.Duration // a replay shorter than this shows nothing
	lines       int
	start, last time.Time
	shown       bool
}

const (
	progressAfter = time.Second
	progressEvery = 250 * time.Millisecond
	// progressCheck lines pass between clock reads, so the replay's hot
	// loop stays a counter increment.
	progressCheck = 1 << 14
)

func (p *progress) init(w io.Writer) {
	if f, ok := w.(*os.File); ok && readline.IsTerminal(int(f.Fd())) {
		p.w = w
	}
	p.after = progressAfter
}

// tick counts one line of the file or stream called name.
func (p *progress) tick(name string) {
	if p.w == nil {
		return
	}
	p.lines++
	if p.lines == 1 {
		p.start = time.Now()
		return
	}
	if p.lines%progressCheck != 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.start) < p.after || now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	rate := float64(p.lines) / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "\r\x1b[K%s: %d lines, %s lines/s", name, p.lines, humanRate(rate))
	p.shown = true
}

// clear erases the progress line before other output.
func (p *progress) clear() {
	if p.shown {
		io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// done ends the count when the outermost replay ends.
func (p *progress) done(outermost bool) {
	if outermost {
		p.clear()
		p.lines = 0
	}
}

// humanRate prints 2.31 M, 840 k or 95.
func humanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2f M", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.0f k", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}
