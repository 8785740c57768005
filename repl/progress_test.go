package repl

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestProgress: a replay shows progress on a terminal's stderr, erases it
// at the end, and shows none on a pipe.
func TestProgress(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptm.Close()
	defer tty.Close()
	var seen bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&seen, ptm)
		close(read)
	}()

	script := strings.Repeat("# a comment line\n", 3*progressCheck)
	in := NewInterp(newMemEngine(), io.Discard, Options{Stderr: tty})
	if in.prog.w == nil {
		t.Fatal("a terminal's stderr is not taken for progress")
	}
	in.prog.after = 0
	for range 2 {
		if err := in.RunReader("big.rtm", strings.NewReader(script)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(progressEvery) // the next replay may show again
	}
	// A source typed at the prompt counts its own lines: the count of
	// one after another went on from the first's.
	src := filepath.Join(t.TempDir(), "src.rtm")
	if err := os.WriteFile(src, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := in.source(src); err != nil {
			t.Fatal(err)
		}
		time.Sleep(progressEvery)
	}
	tty.Close()
	select {
	case <-read:
	case <-time.After(5 * time.Second):
		t.Fatal("terminal output not drained")
	}
	out := seen.String()
	if !strings.Contains(out, "\r\x1b[Kbig.rtm: 16384 lines, ") || !strings.Contains(out, " lines/s") {
		t.Errorf("no progress shown: %q", out)
	}
	counts := regexp.MustCompile(`src\.rtm: (\d+) lines`).FindAllStringSubmatch(out, -1)
	if len(counts) == 0 {
		t.Errorf("no progress shown for a source: %q", out)
	}
	for _, c := range counts {
		if n, _ := strconv.Atoi(c[1]); n > 3*progressCheck {
			t.Errorf("a source of %d lines showed %d", 3*progressCheck, n)
		}
	}
	if !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("progress not erased at the end: %q", out)
	}

	var pipe bytes.Buffer
	in = NewInterp(newMemEngine(), io.Discard, Options{Stderr: &pipe})
	in.prog.after = 0
	in.RunReader("big.rtm", strings.NewReader(script))
	if pipe.Len() != 0 {
		t.Errorf("progress on a pipe: %q", pipe.String())
	}
}
