package main

// Who may do what: a client of the server's uid may change the tables
// (through the server), and another uid is kept out by the socket's mode
// and by the server's own check.

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestClientWritesThroughServer: a client of the server's own uid may
// change the tables: the server applies the change and every client, the
// sender too, gets it.
func TestClientWritesThroughServer(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	r := runRTM(t, "C,10.1.1.0/24,192.168.1.1,eth0\nshow routes\n", "client", "--socket", in.socket)
	if r.code != 0 || r.stdout != "10.1.1.0/24 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("client write: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	srv.must("expect route 10.1.1.0/24 via 192.168.1.1 dev eth0")
}

// TestOtherUIDRefused: socket and store are 0600; a client of another uid
// is stopped by the socket's mode, and when the mode lets it through, by
// the server's SO_PEERCRED check, unless --allow-uid names it.
func TestOtherUIDRefused(t *testing.T) {
	in, bin := nobodyInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0", "C,00:1a:2b:3c:4d:5e,10.1.1.7")
	for _, p := range []string{in.socket, in.store} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", p, fi.Mode().Perm(), err)
		}
	}
	r := asNobody(t, bin, "show routes\n", "--socket", in.socket)
	if r.code == 0 || !strings.Contains(r.stderr, in.socket) || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("uid 65534 through a 0600 socket: exit %d, stderr %q", r.code, r.stderr)
	}
	before := in.dump()
	os.Chmod(in.socket, 0o666)
	r = asNobody(t, bin, "show routes\n", "--socket", in.socket)
	if r.code == 0 || !strings.Contains(r.stderr, "uid 65534 may not connect") || !strings.Contains(r.stderr, "--allow-uid 65534") {
		t.Fatalf("uid 65534 not refused by the server: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(srv.out.String()+srv.errb.String(), "refused") }) {
		t.Errorf("server did not log the refusal: %s", srv.out.String()+srv.errb.String())
	}
	if after := in.dump(); after != before {
		t.Fatalf("tables changed by the refused client")
	}
	srv.send("quit")
	if code := srv.wait(10 * time.Second); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	// Allowed by the flag: the handshake passes; the store's own mode is
	// the owner's to open, and says so when it is not.
	srv = in.server("--allow-uid", "65534")
	os.Chmod(in.socket, 0o666)
	r = asNobody(t, bin, "show routes\n", "--socket", in.socket)
	if r.code == 0 || !strings.Contains(r.stderr, in.store) || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("allowed uid 65534 with a 0600 store: exit %d, stderr %q", r.code, r.stderr)
	}
	os.Chmod(in.store, 0o644)
	r = asNobody(t, bin, "show routes\nshow macs\n", "--socket", in.socket)
	if r.code != 0 {
		t.Fatalf("allowed uid 65534: exit %d, stderr %q", r.code, r.stderr)
	}
	assertLines(t, "client of uid 65534", sortedLines(r.stdout), sortedLines(before))
}
