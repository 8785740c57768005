package main

// Resource limits: a server out of file descriptors.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"rtm/proto"
)

// helloPacket is a client hello as the wire carries it: header 'R', the
// protocol version, kind hello, then the name.
func helloPacket(name string) []byte {
	return append([]byte{'R', proto.Version, byte(proto.KindHello), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, name...)
}

// rawSession opens a bare connection and says hello.
func rawSession(t *testing.T, sock string) *net.UnixConn {
	t.Helper()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatalf("connect %s: %v", sock, err)
	}
	t.Cleanup(func() { uc.Close() })
	if _, err := uc.Write(helloPacket("raw")); err != nil {
		t.Fatal(err)
	}
	return uc
}

// welcomed reports whether the server's welcome (kind 2) arrives within d.
func welcomed(uc *net.UnixConn, d time.Duration) bool {
	buf := make([]byte, 70000)
	uc.SetReadDeadline(time.Now().Add(d))
	defer uc.SetReadDeadline(time.Time{})
	n, err := uc.Read(buf)
	return err == nil && n >= 16 && buf[0] == 'R' && buf[2] == 2
}

// TestServerFDExhaustion runs `rtm server` under prlimit --nofile=32 and
// connects more sessions than it can hold: the server logs the accept
// failure naming the socket and the cause, keeps serving the clients it
// has (each one's whole view, MAC addresses read through its own mapping,
// equals the tables the changes describe), takes the waiting session in
// once descriptors are freed, and is still running.
func TestServerFDExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit not installed")
	}
	in := newInstance(t)
	p := startCmd(t, exec.Command(prlimit, append([]string{"--nofile=32:32", rtmBin, "server", "--framed"}, in.flags()...)...))
	p.must("")
	m := newModel()
	rng := rand.New(rand.NewPCG(41, 42))
	p.must(m.gen(rng, 500)...)
	var good []*proc
	for i := range 3 {
		good = append(good, in.client(fmt.Sprintf("good-%d", i)))
	}
	var raws []*net.UnixConn
	var waiting *net.UnixConn
	for len(raws) < 64 {
		uc := rawSession(t, in.socket)
		if !welcomed(uc, 500*time.Millisecond) {
			waiting = uc
			break
		}
		raws = append(raws, uc)
	}
	if waiting == nil {
		t.Fatal("64 sessions accepted under a 32-descriptor limit")
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(p.errb.String(), "too many open files") }) {
		t.Fatalf("no report of the exhaustion: %s", p.errb)
	}
	logged := p.errb.String()
	if !strings.Contains(logged, "accept on "+in.socket) {
		t.Fatalf("the report does not name the socket: %s", logged)
	}
	// The server still serves the clients it has.
	p.must(m.gen(rng, 2000)...)
	for _, c := range good {
		assertLines(t, "client while the server is out of descriptors", sortedLines(c.must("sync local", "show routes", "show macs")), m.lines())
	}
	for _, uc := range raws[:4] {
		uc.Close()
	}
	if !welcomed(waiting, 5*time.Second) {
		t.Fatalf("waiting session never welcomed after descriptors were freed: %s", p.errb)
	}
	if p.fp.Exited() {
		t.Fatalf("server exited: %s: %s", p.fp.Status(), p.errb)
	}
	t.Logf("server held %d sessions (3 clients + %d bare) under RLIMIT_NOFILE=32; report: %s", len(good)+len(raws), len(raws), firstLine(logged, "too many open files"))
}

func firstLine(s, substr string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
