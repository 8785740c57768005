package main

// Resource limits: a server out of file descriptors.

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// helloPacket is a client hello as the wire carries it: header 'R',
// version 1, kind 1, then the name.
func helloPacket(name string) []byte {
	return append([]byte{'R', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, name...)
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
// failure naming the socket and the cause, keeps serving its clients, and
// takes the waiting session in once descriptors are freed.
func TestServerFDExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit not installed")
	}
	in := newInstance(t)
	p := startCmd(t, exec.Command(prlimit, append([]string{"--nofile=32:32", rtmBin, "server"}, in.flags()...)...))
	in.waitSocket(p)
	p.send("C,10.1.1.0/24,192.168.1.1,eth0")
	c := in.client("kept")
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
	if e := p.errb.String(); !strings.Contains(e, in.socket) {
		t.Fatalf("the report does not name the socket: %s", e)
	}
	// The stream server applies the change when it reads it: poll.
	p.send("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	var got string
	if !waitFor(5*time.Second, func() bool {
		got = c.must("sync", "show macs")
		return strings.Contains(got, "00:1a:2b:3c:4d:5e 10.1.1.7")
	}) {
		t.Fatalf("client not served while the server is out of descriptors: %q", got)
	}
	for _, uc := range raws[:4] {
		uc.Close()
	}
	if !welcomed(waiting, 5*time.Second) {
		t.Fatalf("waiting session never welcomed after descriptors were freed: %s", p.errb)
	}
	t.Logf("server held %d sessions under RLIMIT_NOFILE=32; report: %s", len(raws)+1, firstLine(p.errb.String(), "too many open files"))
}

func firstLine(s, substr string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
