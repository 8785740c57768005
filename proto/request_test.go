package proto

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// echoCommands runs a request the way the tests need: "fail" fails,
// "big" writes 1 MiB, anything else is echoed.
type echoCommands struct{}

func (echoCommands) RunRemote(lines []byte, w io.Writer, after func(int, error) bool) {
	for i, l := range strings.SplitAfter(string(lines), "\n") {
		if l == "" {
			return
		}
		var err error
		switch l = strings.TrimSuffix(l, "\n"); l {
		case "fail":
			err = errors.New("failed as asked")
		case "big":
			w.Write(bytes.Repeat([]byte{'x'}, 1<<20))
		default:
			io.WriteString(w, l+"\n")
		}
		if !after(i, err) {
			return
		}
	}
}

func ask(t *testing.T, c *Client, epoch uint64, bail bool, lines ...string) Reply {
	t.Helper()
	ch, err := c.Request(epoch, []byte(strings.Join(lines, "\n")+"\n"), len(lines), bail)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no reply within 20s")
		return Reply{}
	}
}

// TestRequests: a request runs every line and reports each failure by
// its index; with bail it stops at the first, and the server skips the
// later requests of that epoch but runs a new epoch; output past half
// the reply bound stops the request with a failure that says so.
func TestRequests(t *testing.T) {
	srv := newTestServer(t, ServerOptions{Commands: func(*Origin) Commands { return echoCommands{} }})
	c := dialTest(t, srv, "asker")

	r := ask(t, c, 0, false, "a", "fail", "b")
	if r.Err != nil || r.Ran != 3 || string(r.Output) != "a\nb\n" ||
		!slices.Equal(r.Failures, []Failure{{Line: 1, Msg: "failed as asked"}}) {
		t.Errorf("without bail: %+v", r)
	}
	r = ask(t, c, 7, true, "a", "fail", "b")
	if r.Ran != 2 || string(r.Output) != "a\n" || len(r.Failures) != 1 || r.Skipped {
		t.Errorf("bail: %+v", r)
	}
	if r = ask(t, c, 7, true, "c"); !r.Skipped || r.Ran != 0 || len(r.Output) != 0 {
		t.Errorf("a later request of the failed epoch: %+v; want skipped", r)
	}
	if r = ask(t, c, 8, true, "c"); r.Skipped || string(r.Output) != "c\n" {
		t.Errorf("a new epoch: %+v; want it run", r)
	}

	big := slices.Repeat([]string{"big"}, maxReply/2>>20+4)
	r = ask(t, c, 0, false, big...)
	if r.Err != nil || r.Ran != maxReply/2>>20+1 || len(r.Output) != 0 || len(r.Failures) != 1 ||
		!strings.Contains(r.Failures[0].Msg, "ask for less") {
		t.Errorf("output past the bound: ran %d, %d bytes of output, failures %v", r.Ran, len(r.Output), r.Failures)
	}
}

// TestRequestsWithoutCommands: a server that runs no commands for its
// clients says so in the reply.
func TestRequestsWithoutCommands(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "asker")
	r := ask(t, c, 0, false, "show info")
	if len(r.Failures) != 1 || r.Failures[0].Msg != "this server runs no commands for its clients" {
		t.Errorf("reply %+v", r)
	}
}
