package repl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"rtm/store/entry"

	"github.com/chzyer/readline"
)

// Console is the terminal a session shares between the prompt and other
// goroutines (a client's watched changes, the server's log). While the
// prompt is reading, Printf goes through readline, which erases the line
// being typed, prints, and redraws it; otherwise it writes plainly. Safe
// for concurrent use. No lock is held while readline is closed: its close
// waits for a terminal read that only a key press ends.
type Console struct {
	mu     sync.Mutex // guards rl and closed
	out    io.Writer
	rl     *readline.Instance // set while Interactive runs
	closed bool
	write  sync.Mutex // one write at a time, so lines never interleave
}

// NewConsole returns a console writing to out (normally os.Stdout).
func NewConsole(out io.Writer) *Console { return &Console{out: out} }

// Printf writes one message, adding the newline if format lacks it.
func (c *Console) Printf(format string, args ...any) {
	b := fmt.Appendf(nil, format, args...)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	c.Write(b)
}

// Write writes p without garbling the prompt.
func (c *Console) Write(p []byte) (int, error) {
	c.write.Lock()
	defer c.write.Unlock()
	c.mu.Lock()
	rl := c.rl
	c.mu.Unlock()
	if rl != nil {
		return rl.Write(p)
	}
	return c.out.Write(p)
}

// Close ends a running Interactive (which then returns nil) and restores
// the terminal; a later Interactive returns at once.
func (c *Console) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.detach()
}

// attach makes rl the console's terminal; false if the console is closed.
func (c *Console) attach(rl *readline.Instance) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.rl = rl
	return true
}

// detach restores the terminal and closes the prompt, unless that was
// done already. readline's Close waits for its terminal reader, which may
// stay in a read(2) until a key is pressed: the rest of the close
// finishes in the background, so that nothing waits for a key.
func (c *Console) detach() error {
	c.mu.Lock()
	rl := c.rl
	c.rl = nil
	c.mu.Unlock()
	if rl == nil {
		return nil
	}
	err := rl.Terminal.ExitRawMode()
	rl.Clean()
	go rl.Close()
	return err
}

// Prompt returns the prompt string: rtm(NAME)> for a server,
// rtm-MODE(NAME)> otherwise.
func (in *Interp) Prompt() string {
	p := "rtm"
	if in.opts.Mode != "server" {
		p += "-" + in.opts.Mode
	}
	if in.opts.Name != "" {
		p += "(" + in.opts.Name + ")"
	}
	return p + "> "
}

// Interactive runs the prompt on the terminal until `quit`, Ctrl-D or
// c.Close, and then returns nil. Lines are edited with readline, history
// persists per mode (see HistoryPath), Tab completes command words and
// keys in the tables, Ctrl-C cancels the line being typed. An error is
// printed and the prompt returns. A nil c means Options.Console, else a
// new console on os.Stdout.
func (in *Interp) Interactive(c *Console) error {
	in.typed = true
	defer func() { in.typed = false }()
	if c == nil {
		c = in.opts.Console
	}
	if c == nil {
		c = NewConsole(os.Stdout)
	}
	ahead := &typedAhead{r: os.Stdin}
	var long lineCap
	cfg := &readline.Config{
		FuncFilterInputRune: long.filter,
		Listener:            &long,
		Prompt:              in.Prompt(),
		HistoryLimit:        10000,
		HistorySearchFold:   true,
		AutoComplete:        &completer{in: in},
		// readline completes nothing on a terminal of 0 columns (one whose
		// size was never set: script(1)'s, a serial line); 80 is what such
		// a terminal most likely shows.
		FuncGetWidth: func() int {
			if w := readline.GetScreenWidth(); w > 0 {
				return w
			}
			return 80
		},
		Stdin:  readline.NewCancelableStdin(ahead),
		Stdout: c.out,
		Stderr: in.opts.Stderr,
	}
	hist, err := HistoryPath(in.opts.Mode)
	if err != nil {
		fmt.Fprintf(in.opts.Stderr, "history not kept: %v\n", err)
	} else {
		cfg.HistoryFile = hist
	}
	rl, err := readline.NewEx(cfg)
	if err != nil {
		return fmt.Errorf("prompt: %w", err)
	}
	long.op.Store(rl.Operation)
	if !c.attach(rl) {
		rl.Close()
		return nil
	}
	defer c.detach()
	for n := 1; ; n++ {
		line, err := rl.Readline()
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("prompt: %w", err)
		}
		if long.cut.Swap(false) {
			fmt.Fprintf(in.opts.Stderr, "error: a line of more than %d characters, which no command is: not run (its rest was not taken; `source FILE` or a pipe reads long input)\n", promptLineMax)
			continue
		}
		in.stop.reset()
		eof := watchEOF(int(os.Stdin.Fd()), in.Interrupt, ahead.add)
		err = in.runPrompt(Location{File: "<prompt>", Line: n}, []byte(line))
		quit := eof()
		if in.stop.stopped() {
			// Ctrl-C drops what was typed meanwhile, as the terminal
			// does with what it still holds (and as a shell does).
			ahead.drop()
		}
		if err != nil && !errors.Is(err, ErrQuit) && !(quit && errors.Is(err, ErrInterrupted)) {
			if in.stop.stopped() {
				// The terminal echoed ^C where the cursor was: the
				// report starts a line of its own, as a shell's prompt
				// does.
				fmt.Fprintln(in.opts.Stderr)
			}
			fmt.Fprintf(in.opts.Stderr, "error: %v\n", err)
		}
		if quit || errors.Is(err, ErrQuit) {
			in.reportQuit(err) // a source that quit after failed lines counts them
			return nil
		}
	}
}

// promptLineMax bounds a line typed or pasted at the prompt. readline
// draws the whole line again for each character it takes, so a pasted
// line costs the square of its length: 10,000 characters were 55 MB to
// the terminal and seconds of drawing, 5,000 nearly a minute on a slow
// one. No command comes near this length (a route's line is at most
// about 100 characters).
const promptLineMax = 1024

// lineCap is readline's filter of the keys typed and listener of its
// line: past promptLineMax characters it takes no more keys, and a line
// that lost keys is refused whole when entered (cut), not run cut short.
// The length is readline's own, after every key (OnChange), so deleting
// by word, to the end or by recalling history counts as it should.
type lineCap struct {
	n    int  // the line's length as readline last had it; its goroutine only
	over bool // keys of the line being edited were not taken; the same
	cut  atomic.Bool
	op   atomic.Pointer[readline.Operation] // the prompt's, once made
}

func (l *lineCap) filter(r rune) (rune, bool) {
	switch {
	case r == readline.CharEnter || r == readline.CharCtrlJ:
		// The listener sees the line emptied after it is handed over:
		// what it lost is said now, before.
		l.cut.Store(l.over)
		l.over = false
	case r == readline.CharInterrupt:
		l.over = false
		// readline takes a Ctrl-C while Tab's choices are shown as
		// closing them: the line stayed, and Enter ran it. Closed here
		// first, they let the Ctrl-C cancel the line, as it says.
		if op := l.op.Load(); op != nil && op.IsInCompleteMode() {
			op.ExitCompleteMode(false)
		}
	case r >= ' ' && r != readline.CharBackspace && l.n >= promptLineMax:
		// A bell is a key readline takes without drawing the line
		// again; a rune refused (false) would be drawn for.
		l.over = true
		return readline.CharBell, true
	}
	return r, true
}

// OnChange is readline's Listener: it learns the line's length.
func (l *lineCap) OnChange(line []rune, _ int, _ rune) ([]rune, int, bool) {
	if l.n = len(line); l.n == 0 {
		l.over = false // emptied: what is typed now is all there is
	}
	return nil, 0, false
}

// typedAhead is the terminal as readline reads it, after the lines typed
// while a command ran (watchEOF read them to look for Ctrl-D among them).
type typedAhead struct {
	mu      sync.Mutex
	pending []byte
	r       io.Reader
}

func (t *typedAhead) add(line []byte) {
	t.mu.Lock()
	t.pending = append(t.pending, line...)
	t.mu.Unlock()
}

func (t *typedAhead) drop() {
	t.mu.Lock()
	t.pending = nil
	t.mu.Unlock()
}

func (t *typedAhead) Read(b []byte) (int, error) {
	t.mu.Lock()
	if len(t.pending) > 0 {
		n := copy(b, t.pending)
		t.pending = t.pending[n:]
		t.mu.Unlock()
		return n, nil
	}
	t.mu.Unlock()
	return t.r.Read(b)
}

// runPrompt is RunLine without the <prompt>:N: prefix on errors: the
// person who typed the line knows where it was.
func (in *Interp) runPrompt(loc Location, line []byte) error {
	var le *LineError
	err := in.RunLine(loc, line)
	if errors.As(err, &le) && le.File == loc.File {
		return le.Err
	}
	return err
}

// HistoryPath returns the prompt history file of a mode,
// $XDG_STATE_HOME/rtm/history-MODE (default ~/.local/state), creating its
// directory (mode 0700: history holds what was typed).
func HistoryPath(mode string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(dir) { // the XDG spec says to ignore a relative path
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("history: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "rtm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("history: %w", err)
	}
	return filepath.Join(dir, "history-"+mode), nil
}

// maxCandidates bounds a completion list: a table of a million keys must
// not flood the terminal.
const maxCandidates = 200

// completer completes what the grammar takes where the cursor is: the
// words the parser would take next (it is asked: see wordList), and the
// keys in the tables where a key is expected.
type completer struct{ in *Interp }

// Do implements readline.AutoCompleter: given the line and the cursor, it
// returns the possible continuations of the word under the cursor and the
// length of that word.
func (cp *completer) Do(line []rune, pos int) ([][]rune, int) {
	text := string(line[:pos])
	start := strings.LastIndexAny(text, " \t,") + 1
	cands, file := cp.candidates(text[:start])
	if file {
		start = strings.LastIndexAny(text, " \t") + 1
		return files(text[start:])
	}
	word := text[start:]
	lw := strings.ToLower(word)
	var out [][]rune
	for _, c := range cands {
		if len(out) == maxCandidates {
			break
		}
		if strings.HasPrefix(strings.ToLower(c), lw) {
			out = append(out, []rune(c[len(word):]))
		}
	}
	return out, len([]rune(word))
}

// candidates lists what may follow text (the line up to the word being
// completed), or says that a file name is expected. Words carry their
// trailing space; keys do not, so a gateway or an IP can follow a comma.
func (cp *completer) candidates(text string) (out []string, file bool) {
	e := cp.in.engine
	f := strings.Fields(strings.ToLower(text))
	if len(f) >= 2 && f[0] == "expect" && f[1] == "error" {
		f = f[2:] // a change follows as it would alone
	}
	switch {
	case len(f) == 1 && (f[0] == "u," || f[0] == "d," || f[0] == "r,"):
		return append(prefixes(e.Routes()), macs(e.MACs())...), false
	case len(f) > 0 && strings.Contains(f[0], ","):
		return nil, false // the fields of a change: nothing to offer
	}
	ws, err := words([]byte(text))
	if err != nil {
		return nil, false
	}
	var p parser
	next, kinds := p.expected(ws)
	out = suffixed(next, " ")
	if len(ws) == 0 || kinds&valueCommand != 0 {
		out = append(out, "C,", "U,", "D,", "R,")
	}
	if kinds&valueMAC != 0 {
		out = append(out, macs(e.MACs())...)
	}
	if kinds&valuePrefix != 0 {
		out = append(out, prefixes(e.Routes())...)
	}
	if kinds&valueDev != 0 {
		out = append(out, devices(e.Routes())...)
	}
	if kinds&valueTopic != 0 {
		out = append(out, suffixed(helpTopicNames(), " ")...)
	}
	return out, kinds&valueFile != 0
}

func suffixed(ws []string, s string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w + s
	}
	return out
}

func prefixes(rs []entry.Route) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Prefix.String()
	}
	return out
}

// devices lists the devices of routes, each once, sorted.
func devices(rs []entry.Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Dev)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func macs(ms []entry.MAC) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// files completes a file name for source.
func files(word string) ([][]rune, int) {
	dir, base := filepath.Split(word)
	d := dir
	if d == "" {
		d = "."
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, 0
	}
	var out [][]rune
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".") {
			continue
		}
		rest := name[len(base):]
		if e.IsDir() {
			rest += "/"
		}
		out = append(out, []rune(rest))
		if len(out) == maxCandidates {
			break
		}
	}
	return out, len([]rune(base))
}
