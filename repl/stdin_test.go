package repl

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOpenPipe: a pipe is read through a description of its own, which
// waits in the poller while the pipe is empty, says when bytes wait, and
// ends at io.EOF when the writer closes; files and sockets are not pipes.
func TestOpenPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := openPipe(int(r.Fd()))
	if p == nil {
		t.Fatal("openPipe: nil for a pipe")
	}
	defer p.Close()
	// A read can fill the pipe's capacity and a page of its buffer; the
	// first faults that much in.
	if capacity, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || p.reach != capacity+os.Getpagesize() {
		t.Errorf("reach %d; the pipe holds %d (%v)", p.reach, capacity, err)
	}
	if inputPending(p) {
		t.Fatal("an empty pipe is pending")
	}
	go func() {
		time.Sleep(20 * time.Millisecond) // the reader waits in the poller
		w.Write([]byte("C,10.1.0.0/16,192.168.1.1,eth0\n"))
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("quit\n"))
		w.Close()
	}()
	buf := make([]byte, 4)
	n, err := io.ReadFull(p, buf)
	if err != nil || string(buf[:n]) != "C,10" {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	if !inputPending(p) {
		t.Fatal("bytes wait in the pipe, but it is not pending")
	}
	rest, err := io.ReadAll(p)
	if err != nil || string(rest) != ".1.0.0/16,192.168.1.1,eth0\nquit\n" {
		t.Fatalf("the rest: %q, %v", rest, err)
	}
	if n, err := p.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v; want 0, EOF", n, err)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "lines"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if openPipe(int(f.Fd())) != nil {
		t.Error("openPipe: a regular file taken for a pipe")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if openPipe(fds[0]) != nil {
		t.Error("openPipe: a socket taken for a pipe")
	}
}
