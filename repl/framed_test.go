package repl

import (
	"errors"
	"strings"
	"testing"

	"rtm/proto/framed"
)

// TestServeFramed: every line, blank and comment ones too, gets exactly
// one terminator after its output; errors lose the stream's location and
// their newlines; quit answers and then ends the stream.
func TestServeFramed(t *testing.T) {
	in := NewInterp(newMemEngine(), nil, Options{})
	input := strings.Join([]string{
		"C,10.1.1.0/24,192.168.1.1,eth0",
		"",
		"# a comment",
		"show routes",
		"bogus",
		"expect route 10.1.1.0/24 via 192.168.9.9",
		"quit",
		"show routes",
	}, "\n") + "\n"
	var out strings.Builder
	err := in.ServeFramed(strings.NewReader(input), &out)
	if !errors.Is(err, ErrQuit) {
		t.Fatalf("ServeFramed after quit: %v, want ErrQuit", err)
	}
	// The terminators carry the errors without this stream's location:
	// the driver knows where its lines came from.
	ok := framed.Terminator(nil)
	want := strings.Join([]string{
		ok, ok, ok,
		"10.1.1.0/24 via 192.168.1.1 dev eth0\n",
		ok,
		framed.Terminator(errors.New(`unknown command "bogus": want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)`)),
		framed.Terminator(errors.New("expect failed: want route 10.1.1.0/24 via 192.168.9.9, got route 10.1.1.0/24 via 192.168.1.1 dev eth0")),
		ok,
	}, "")
	if out.String() != want {
		t.Errorf("framed output:\n%q\nwant:\n%q", out.String(), want)
	}

	out.Reset()
	if err := in.ServeFramed(strings.NewReader("show routes"), &out); err != nil {
		t.Fatalf("ServeFramed at end of input: %v", err)
	}
	if want := "10.1.1.0/24 via 192.168.1.1 dev eth0\n" + framed.Terminator(nil); out.String() != want {
		t.Errorf("last line without newline: %q, want %q", out.String(), want)
	}
}
