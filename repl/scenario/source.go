package scenario

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"rtm/repl"
)

// A sourced file that holds only lines for the server goes to the server
// as one `source ABSOLUTE_PATH` command, which the server replays at its
// own speed; any other file runs here line by line, a round trip each.
// With a file of 100,000 route changes, generated with
//
//	awk 'BEGIN { for (i = 0; i < 50000; i++) printf "C,10.%d.%d.0/24,192.168.1.1,eth0\n", i/256, i%256;
//	             for (i = 0; i < 50000; i++) printf "U,10.%d.%d.0/24,192.168.1.2,eth1\n", i/256, i%256 }' >big.inc
//
// and sourced by a scenario with one client (client start a, source
// big.inc, sync, expect count routes 50000), rtm test took 3.1s line by
// line (median of 3, 2.7 to 3.7s; about 33,000 lines/s) and 0.21s (0.19
// to 0.22s) with the file sent whole, on 2 loaded cores. A sync appended
// to big.inc makes it run line by line again.

// sourcePlan is what a sourced file holds when every line of it, and of
// the files it sources, is one the server runs alone.
type sourcePlan struct {
	files   map[string]string // absolute path -> the path as the runner names it
	lines   int               // lines that are neither blank nor comments
	changes int
	last    repl.Location // the last change
}

// scanSource reads path and the files it sources, and returns their plan
// if the server can run them alone.
func (s *scenario) scanSource(path string) (*sourcePlan, bool) {
	p := &sourcePlan{files: map[string]string{}}
	chain := s.sources.Clone()
	if !p.scan(path, &chain) {
		return nil, false
	}
	return p, true
}

// scan adds the lines of path to the plan. It returns false at the first
// line the runner must see (a directive, expect, sync, quit), one the
// parser rejects, or a source the runner refuses (a cycle, a file it
// cannot read): such a file runs line by line, which reports the line
// where it is. chain holds the including files.
func (p *sourcePlan) scan(path string, chain *repl.Sources) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	// A regular file only: a FIFO's lines read here would be read no
	// more; it runs line by line.
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := chain.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	defer chain.Pop()
	p.files[abs] = path
	br := bufio.NewReaderSize(f, maxLine)
	loc := repl.Location{File: path}
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			return false
		}
		if len(line) > 0 {
			if loc.Line++; loc.Line == 1 {
				line = repl.TrimBOM(line)
			}
			if text := repl.CleanLine(line); len(text) > 0 && !p.add(loc, text, chain) {
				return false
			}
		}
		if rerr == io.EOF {
			return true
		}
		if rerr != nil {
			return false
		}
	}
}

// add adds one line (cleaned, not empty) to the plan.
func (p *sourcePlan) add(loc repl.Location, text []byte, chain *repl.Sources) bool {
	if w, _ := repl.FirstWord(text); isDirectiveWord(w) {
		return false
	}
	cmd, err := repl.Parse(text)
	if err != nil {
		return false
	}
	p.lines++
	switch {
	case cmd.Kind == repl.KindSource:
		path := cmd.Arg
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(loc.File), path)
		}
		return p.scan(path, chain)
	case cmd.Kind == repl.KindExpect || cmd.Kind == repl.KindSync || cmd.Kind == repl.KindQuit:
		return false
	case cmd.IsWrite():
		p.changes++
		p.last = loc
	}
	return true
}

// source runs a sourced file: at the server as one command if it can run
// it alone, else here line by line.
func (s *scenario) source(path string) error {
	p, ok := s.scanSource(path)
	if !ok || s.server == nil {
		return s.runFile(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return s.runFile(path)
	}
	s.lines += p.lines
	lines := "lines"
	if p.lines == 1 {
		lines = "line"
	}
	s.logf("    %s: %d %s for the server alone: sent as one source command\n", path, p.lines, lines)
	// The server replays about a million lines a second; a tenth of that
	// is allowed on top of the line timeout.
	extra := time.Duration(p.lines) * 10 * time.Microsecond
	err = s.exec(s.server, "server", "source "+strconv.Quote(abs), extra)
	s.changes += p.changes
	if p.changes > 0 {
		s.lastChange = p.last
	}
	if err == nil {
		return nil
	}
	return s.locate(p, err)
}

// locate reports the server's refusal of a line of a sourced file at that
// line, as the line-by-line run would: the server's message starts with
// the absolute path and the line number.
func (s *scenario) locate(p *sourcePlan, err error) error {
	var pe *processError
	if !errors.As(err, &pe) || pe.err != nil {
		return err
	}
	best := ""
	for abs := range p.files {
		if strings.HasPrefix(pe.msg, abs+":") && len(abs) > len(best) {
			best = abs
		}
	}
	if best == "" {
		return err
	}
	num, msg, ok := strings.Cut(pe.msg[len(best)+1:], ": ")
	n, nerr := strconv.Atoi(num)
	if !ok || nerr != nil {
		return err
	}
	loc := repl.Location{File: p.files[best], Line: n}
	return s.failure(loc, lineText(loc), &processError{where: pe.where, msg: msg})
}

// lineText returns the line at loc, comment removed and trimmed.
func lineText(loc repl.Location) string {
	f, err := os.Open(loc.File)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for i := 1; sc.Scan(); i++ {
		if i == loc.Line {
			line := sc.Bytes()
			if i == 1 {
				line = repl.TrimBOM(line)
			}
			return string(repl.CleanLine(line))
		}
	}
	return ""
}
