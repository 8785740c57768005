package repl

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"rtm/repl/rtmtest"
)

// TestWaitEOF: what waitEOF makes of what a real terminal gives while a
// command runs, the terminal in canonical mode as readline leaves it.
func TestWaitEOF(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string // typed while the terminal was still in raw mode
		typ  string // typed after, in canonical mode
		eof  bool   // the watch interrupts and says so
		kept string // handed to the next prompt
	}{
		{name: "lines typed ahead", typ: "show routes\nC,10.1.0.0/16,-,eth0\n", kept: "show routes\nC,10.1.0.0/16,-,eth0\n"},
		{name: "Ctrl-D on an empty line", typ: "\x04", eof: true},
		{name: "a line cut by Ctrl-D", typ: "D,10.1.0.0/16\x04", eof: true},
		{name: "a line, then Ctrl-D", typ: "show routes\n\x04", eof: true, kept: "show routes\n"},
		// The rest of a paste that came before the terminal left raw mode:
		// returns as CRs, its last line unfinished, and no end of file.
		{name: "typed in raw mode", raw: "C,10.2.0.0/16,-,eth0\rshow rou", typ: "tes\n", kept: "C,10.2.0.0/16,-,eth0\rshow routes\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptm, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer ptm.Close()
			defer tty.Close()
			fd := int(tty.Fd())
			cooked, err := unix.IoctlGetTermios(fd, unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			cooked.Lflag &^= unix.ECHO // nothing to read back on the master
			raw := *cooked
			raw.Lflag &^= unix.ICANON | unix.ISIG | unix.IEXTEN
			raw.Iflag &^= unix.ICRNL
			if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
				t.Fatal(err)
			}
			typeIn(t, ptm, tc.raw)
			// The line discipline takes what the master writes in a while:
			// all of it must be in before the mode changes.
			if !rtmtest.WaitFor(5*time.Second, func() bool {
				n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
				return err == nil && n == len(tc.raw)
			}) {
				t.Fatal("what was typed in raw mode never reached the terminal")
			}
			if err := unix.IoctlSetTermios(fd, unix.TCSETS, cooked); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var kept []byte
			interrupted := make(chan struct{})
			stop := watchEOF(fd, func() { close(interrupted) }, func(b []byte) {
				mu.Lock()
				kept = append(kept, b...)
				mu.Unlock()
			})
			typeIn(t, ptm, tc.typ)
			if tc.eof {
				select {
				case <-interrupted:
				case <-time.After(5 * time.Second):
				}
			} else {
				rtmtest.WaitFor(5*time.Second, func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(kept) >= len(tc.kept)
				})
			}
			if eof := stop(); eof != tc.eof {
				t.Errorf("end of file seen: %v, want %v", eof, tc.eof)
			}
			mu.Lock()
			defer mu.Unlock()
			if !bytes.Equal(kept, []byte(tc.kept)) {
				t.Errorf("typed ahead %q, want %q", kept, tc.kept)
			}
		})
	}
}

func typeIn(t *testing.T, ptm *os.File, s string) {
	t.Helper()
	if _, err := ptm.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
