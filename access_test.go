package main

// Who may do what: a client of the server's uid may change the tables
// (through the server), and another uid is kept out by the socket's mode
// and by the server's own check.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"rtm/proto"
	"rtm/repl/rtmtest"
	"rtm/store"
	"rtm/store/entry"
)

// TestClientWritesThroughServer: a client of the server's own uid may
// change the tables: the server applies the change and every client, the
// sender too, gets it.
func TestClientWritesThroughServer(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	r := runRTM(t, "C,10.1.1.0/24,192.168.1.1,eth0\nshow routes\n", "client", "--socket", in.socket)
	if r.code != 0 || r.stdout != "10.1.1.0/24 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("client write: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	srv.must("expect route 10.1.1.0/24 via 192.168.1.1 dev eth0")
}

// TestOtherUIDRefused: socket and store are 0600; a client of another uid
// is stopped by the socket's mode (and says so, rather than ask whether a
// server runs), and when the mode lets it through, by the server's
// SO_PEERCRED check, unless --allow-uid names it. A server given
// --allow-uid without --group says at start what the flag needs.
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
	if r.code == 0 || !strings.Contains(r.stderr, "connect to "+in.socket+": permission denied on the socket (mode 0600") || strings.Contains(r.stderr, "listening") {
		t.Fatalf("uid 65534 through a 0600 socket: exit %d, stderr %q", r.code, r.stderr)
	}
	// Through its own link to the socket, what refused is the socket.
	link := filepath.Join(sharedDir(t, ""), "mine.sock")
	if r := runCmd(t, commandAs(nobody, nil, "ln", "-s", in.socket, link), "", 10*time.Second); r.code != 0 {
		t.Fatalf("ln -s as uid 65534: %s", r.stderr)
	}
	r = asNobody(t, bin, "show routes\n", "--socket", link)
	if r.code == 0 || !strings.Contains(r.stderr, "connect to "+link+": permission denied on the socket (mode 0600, uid 0, group 0)") {
		t.Fatalf("uid 65534 through its link to a 0600 socket: exit %d, stderr %q", r.code, r.stderr)
	}
	before := in.dump()
	os.Chmod(in.socket, 0o666)
	r = asNobody(t, bin, "show routes\n", "--socket", in.socket)
	if r.code == 0 || !strings.Contains(r.stderr, "uid 65534 may not connect") || !strings.Contains(r.stderr, "--allow-uid 65534") {
		t.Fatalf("uid 65534 not refused by the server: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !rtmtest.WaitFor(5*time.Second, func() bool { return strings.Contains(srv.out.String()+srv.errb.String(), "refused") }) {
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
	if log := srv.errb.String(); !strings.Contains(log, "warning: --allow-uid 65534: uid 65534 cannot open the socket or read the store") || !strings.Contains(log, "--group") {
		t.Fatalf("server with --allow-uid alone did not say what it needs: %s", log)
	}
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

	// A socket of a third uid: not one to be let into, but one to doubt.
	other := filepath.Join(filepath.Dir(in.socket), "other.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: other, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(other, 1, 1); err != nil {
		t.Fatal(err)
	}
	r = asNobody(t, bin, "show routes\n", "--socket", other)
	if r.code == 0 || !strings.Contains(r.stderr, "it is uid 1's, not yours nor a server uid you trust (--server-uid); is --socket right?") {
		t.Fatalf("uid 65534 at uid 1's socket: exit %d, stderr %q", r.code, r.stderr)
	}
}

// needRoot skips a test that runs processes as other uids.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run processes as other uids")
	}
}

// TestRuntimeDirRefused: with XDG_RUNTIME_DIR unset, the socket goes to
// $TMPDIR/rtm-UID. When another uid made that directory first (open to
// all, as an attacker would), when it is open to writes by others, when
// it is a link, or when a directory above it may be written by anyone and
// is not sticky, the server, the client, rtm ls and rtm rm refuse it and
// say why and how to fix it; the server leaves no store behind. Then,
// with nothing in the way, the server makes it, the user's alone. (uid 1
// is the user, 65534 the other.)
func TestRuntimeDirRefused(t *testing.T) {
	needRoot(t)
	bin := nobodyBinary(t)
	tmp, stores := sharedDir(t, ""), sharedDir(t, shmDir())
	runtime := filepath.Join(tmp, "rtm-1")
	user := &syscall.Credential{Uid: 1, Gid: 1}
	env := []string{"TMPDIR=" + tmp, proto.StoreDirEnv + "=" + stores}
	rtm := func(stdin string, args ...string) result {
		return runCmd(t, commandAs(user, env, bin, args...), stdin, 20*time.Second)
	}
	refused := func(what string, want ...string) {
		t.Helper()
		for _, args := range [][]string{
			{"server", "--name", "d", "--exit-at-eof"},
			{"client", "--name", "d", "-c", "show routes"},
			{"ls"},
			{"rm", "d"},
		} {
			r := rtm("", args...)
			if r.code != 1 || r.stdout != "" || strings.Contains(r.stderr, "running?") {
				t.Errorf("%s: rtm %s: exit %d, stdout %q, stderr %q; want a refusal", what, args[0], r.code, r.stdout, r.stderr)
			}
			for _, w := range want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("%s: rtm %s: stderr %q does not say %q", what, args[0], r.stderr, w)
				}
			}
		}
		if left, _ := os.ReadDir(stores); len(left) > 0 {
			t.Errorf("%s: a refused server left %v", what, left)
		}
	}
	as := func(cred *syscall.Credential, script string) {
		t.Helper()
		if r := runCmd(t, commandAs(cred, nil, "sh", "-c", script, "sh", runtime, tmp), "", 10*time.Second); r.code != 0 {
			t.Fatalf("%s: %s", script, r.stderr)
		}
	}

	as(nobody, `mkdir "$1" && chmod 777 "$1"`)
	refused("made by uid 65534", "socket directory "+runtime+" is owned by uid 65534, not by you (uid 1)", "uid 65534 could put a server of its own in place of yours", "XDG_RUNTIME_DIR", "(--socket PATH)")
	os.Remove(runtime)

	// Root's (XDG_RUNTIME_DIR kept through sudo): no threat to name, but
	// another runtime directory, or root's server by its socket.
	if err := os.Mkdir(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	refused("made by root", "socket directory "+runtime+" is owned by uid 0, not by you (uid 1): it holds root's instances, not yours", "XDG_RUNTIME_DIR", "(--socket PATH)")
	os.Remove(runtime)

	as(user, `mkdir "$1" && chmod 777 "$1"`)
	refused("open to all", "socket directory "+runtime+" is writable by group or others (mode 0777)", "chmod 700 "+runtime)
	os.Remove(runtime)

	as(user, `mkdir "$2/own"`)
	as(nobody, `ln -s own "$1"`)
	refused("a link to the user's own directory", "socket directory "+runtime+" is not a directory")
	os.Remove(runtime)

	os.Chmod(tmp, 0o777)
	refused("a parent anyone may write", "directory "+tmp+" is writable by group or others and not sticky (mode 0777)", "chmod +t "+tmp)
	os.Chmod(tmp, 0o777|os.ModeSticky)

	if r := rtm("C,10.1.0.0/16,-,eth0\n", "server", "--name", "d", "--exit-at-eof"); r.code != 0 {
		t.Fatalf("server with nothing in the way: exit %d: %s", r.code, r.stderr)
	}
	fi, err := os.Lstat(runtime)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != 1 {
		t.Fatalf("runtime directory made by the server: %v (%v), want uid 1's, 0700", fi.Mode(), err)
	}
	if r := rtm("", "ls"); r.code != 0 || !strings.Contains(r.stdout, filepath.Join(stores, "rtm.d")) {
		t.Fatalf("rtm ls: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestImpostorServer: a client checks who runs the server (SO_PEERCRED,
// on its own end) before it says hello or believes a byte: a server of
// another uid is refused, for a read too, unless --server-uid names that
// uid. A client whose server is replaced by another uid's while it is
// away exits with the reason instead of taking the stranger's tables.
func TestImpostorServer(t *testing.T) {
	needRoot(t)
	bin := nobodyBinary(t)
	dir, stores := sharedDir(t, ""), sharedDir(t, shmDir())
	env := []string{proto.StoreDirEnv + "=" + stores}
	impostor := func(sock string) *proc {
		t.Helper()
		p := startCmd(t, commandAs(nobody, env, bin, "server", "--framed", "--name", filepath.Base(sock), "--socket", sock))
		p.must("C,10.6.6.0/24,192.0.2.66,eth0", "C,00:1a:2b:3c:4d:5e,192.0.2.66")
		return p
	}
	sock := filepath.Join(dir, "lab.sock")
	imp := impostor(sock)
	r := runRTM(t, "", "client", "--socket", sock, "-c", "show routes")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "the server at "+sock+" runs as uid 65534 (pid ") || !strings.Contains(r.stderr, "), not as you (root):") ||
		!strings.Contains(r.stderr, "--server-uid 65534") || strings.Contains(r.stderr, "listening") {
		t.Fatalf("client of an impostor: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if log := imp.errb.String(); strings.Contains(log, "connected") {
		t.Fatalf("the impostor heard from the client: %s", log)
	}
	// By name, this uid's instance lab.sock is not uid 65534's, whose
	// store is in the same store directory: no word that it runs.
	byName := exec.Command(rtmBin, "client", "--name", "lab.sock", "-c", "show routes")
	byName.Env = append(os.Environ(), env...)
	if r := runCmd(t, byName, "", 20*time.Second); r.code != 1 || strings.Contains(r.stderr, "runs, pid") || !strings.Contains(r.stderr, "another user's server: --socket PATH") {
		t.Fatalf("client --name lab.sock beside uid 65534's store rtm.lab.sock: exit %d, stderr %q", r.code, r.stderr)
	}
	// A server started on that socket is told whose listener holds it.
	r = runRTM(t, "", "server", "--name", "lab", "--socket", sock, "--store", filepath.Join(stores, "rtm.mine"), "--exit-at-eof")
	if want := fmt.Sprintf("listens as uid 65534 (pid %d), not as you", imp.fp.Pid()); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("server on uid 65534's socket: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	r = runRTM(t, "", "client", "--socket", sock, "--server-uid", "65534", "-c", "show routes", "-c", "lookup 00:1a:2b:3c:4d:5e")
	if r.code != 0 || r.stdout != "10.6.6.0/24 via 192.0.2.66 dev eth0\n00:1a:2b:3c:4d:5e 192.0.2.66\n" {
		t.Fatalf("client that trusts uid 65534: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// The user's own server, in the same shared directory; a client of it.
	in := newInstance(t)
	in.socket = filepath.Join(dir, "own.sock")
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0")
	// Another uid's server is told the socket there is not a dead one.
	r = runCmd(t, commandAs(nobody, env, bin, "server", "--name", "nob", "--socket", in.socket, "--exit-at-eof"), "", 20*time.Second)
	if r.code != 1 || !strings.Contains(r.stderr, "a socket of uid 0 (mode 0600) is there, which you may not connect to, so it may be live") {
		t.Fatalf("uid 65534's server on the user's live socket: exit %d, stderr %q", r.code, r.stderr)
	}
	c := in.client("watcher")
	srv.cmd.Process.Kill()
	<-srv.done
	// A dead server's socket stays; in a sticky directory only its owner
	// may remove it. Here it goes, and another uid's server takes its place.
	os.Remove(in.socket)
	impostor(in.socket)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("client still running after its server was replaced: %s", c.errb)
	}
	if code := c.fp.ExitCode(); code != 1 || !strings.Contains(c.errb.String(), "runs as uid 65534") {
		t.Fatalf("client whose server was replaced: exit %d, stderr %q", code, c.errb)
	}
}

// TestSocketLinkOfAnotherUID: a client follows a symbolic link at its
// socket's path only if the user, root or a trusted server uid owns it:
// in a sticky directory another user may put one there that leads to
// another of the user's own servers, which would pass every other check.
func TestSocketLinkOfAnotherUID(t *testing.T) {
	needRoot(t)
	dir := sharedDir(t, "")
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0")
	link := filepath.Join(dir, "lab.sock")
	if err := os.Symlink(in.socket, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	r := runRTM(t, "", "client", "--socket", link, "-c", "C,10.9.9.0/24,-,eth0")
	if r.code != 1 || !strings.Contains(r.stderr, "symbolic link "+link+" is owned by uid 65534") {
		t.Fatalf("a client through uid 65534's link: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := srv.must("show routes"); got != "10.1.1.0/24 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("the link led the client's change to a server: %q", got)
	}
	// The user's own link is followed, as a directory's is.
	if err := os.Lchown(link, 0, 0); err != nil {
		t.Fatal(err)
	}
	if r := runRTM(t, "", "client", "--socket", link, "-c", "show routes count"); r.code != 0 || r.stdout != "1\n" {
		t.Fatalf("a client through the user's own link: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestUnsafeStoreRefused: a root server does not adopt a store another
// uid made, one that others may write, or a link to its own: each is
// refused by name with the fix, and left as it was (root's rtm rm does not
// remove another uid's store either); nor does a server of another uid
// adopt root's, and it is told whose it is. A client checks the
// store the same way before it maps it: the server's uid must own it,
// and nobody else may write it.
func TestUnsafeStoreRefused(t *testing.T) {
	needRoot(t)
	bin := nobodyBinary(t)
	dir, sockets := sharedDir(t, shmDir()), sharedDir(t, "")
	foreign := filepath.Join(dir, "rtm.foreign")
	made := commandAs(nobody, nil, bin, "server", "--store", foreign, "--socket", filepath.Join(sockets, "n.sock"), "--exit-at-eof")
	if r := runCmd(t, made, "C,00:1a:2b:3c:4d:5e,10.1.1.7\n", 20*time.Second); r.code != 0 {
		t.Fatalf("uid 65534's server: exit %d: %s", r.code, r.stderr)
	}
	in := newInstance(t)
	refused := func(path, why, fix string) {
		t.Helper()
		before, _ := os.ReadFile(path)
		fi, _ := os.Lstat(path)
		r := runRTM(t, "", "server", "--name", in.name, "--socket", in.socket, "--store", path, "--exit-at-eof")
		if r.code != 1 || !strings.Contains(r.stderr, "store "+path+" "+why) || !strings.Contains(r.stderr, fix) {
			t.Errorf("server on %s: exit %d, stderr %q; want it refused: %s, %s", path, r.code, r.stderr, why, fix)
		}
		after, _ := os.ReadFile(path)
		fa, _ := os.Lstat(path)
		if string(after) != string(before) || fa.Mode() != fi.Mode() || fa.Sys().(*syscall.Stat_t).Uid != fi.Sys().(*syscall.Stat_t).Uid {
			t.Errorf("the refused store %s changed", path)
		}
	}
	refused(foreign, "is owned by uid 65534, not uid 0", "have it removed (by uid 65534 or root)")
	rm := exec.Command(rtmBin, "rm", "foreign")
	rm.Env = append(os.Environ(), proto.StoreDirEnv+"="+dir)
	if r := runCmd(t, rm, "", time.Minute); r.code != 1 || !strings.Contains(r.stderr, "store "+foreign+" belongs to uid 65534, not to you") {
		t.Errorf("root's rtm rm of uid 65534's store: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("uid 65534's store: %v", err)
	}

	// A server of another uid, which cannot even open root's store to
	// write it, is told whose it is all the same.
	rootStore := filepath.Join(dir, "rtm.root")
	if r := runRTM(t, "", "server", "--name", "root", "--socket", filepath.Join(sockets, "r.sock"), "--store", rootStore, "--exit-at-eof"); r.code != 0 {
		t.Fatalf("root's server: exit %d: %s", r.code, r.stderr)
	}
	other := commandAs(nobody, nil, bin, "server", "--store", rootStore, "--socket", filepath.Join(sockets, "o.sock"), "--exit-at-eof")
	if r := runCmd(t, other, "", 20*time.Second); r.code != 1 || !strings.Contains(r.stderr, "store "+rootStore+" is owned by uid 0, not uid 65534: it is root's store, which only a server run as root keeps") {
		t.Errorf("uid 65534's server on root's store: exit %d, stderr %q", r.code, r.stderr)
	}
	// The same while root's server runs, its lock file there too: the
	// store is what is wrong, not the lock file of a live server, which
	// removing would not mend.
	live := start(t, "server", "--framed", "--name", "root", "--socket", filepath.Join(sockets, "r.sock"), "--store", rootStore)
	live.must("")
	other = commandAs(nobody, nil, bin, "server", "--store", rootStore, "--socket", filepath.Join(sockets, "o.sock"), "--exit-at-eof")
	if r := runCmd(t, other, "", 20*time.Second); r.code != 1 || !strings.Contains(r.stderr, "store "+rootStore+" is owned by uid 0, not uid 65534") || strings.Contains(r.stderr, "lock file") {
		t.Errorf("uid 65534's server on root's store, which root's server runs on: exit %d, stderr %q", r.code, r.stderr)
	}
	live.send("quit")
	live.wait(10 * time.Second)

	srv := in.server()
	srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	srv.send("quit")
	srv.wait(10 * time.Second)
	link := filepath.Join(dir, "rtm.link")
	if err := os.Symlink(in.store, link); err != nil {
		t.Fatal(err)
	}
	refused(link, "is a symbolic link", "give the path of the file itself")
	for _, mode := range []os.FileMode{0o666, 0o660, 0o602} {
		os.Chmod(in.store, mode)
		refused(in.store, fmt.Sprintf("is writable by group or others (mode %04o)", mode), "chmod go-w "+in.store)
	}
	// A second name for the store (a hard link, which anyone may make to
	// a file they cannot write where fs.protected_hardlinks is 0) could be
	// another instance's: under either name it is refused, and --fresh
	// empties neither.
	os.Chmod(in.store, 0o600)
	second := filepath.Join(dir, "rtm.second")
	if err := os.Link(in.store, second); err != nil {
		t.Fatal(err)
	}
	refused(second, "has 2 names (hard links)", "-samefile "+second)
	refused(in.store, "has 2 names (hard links)", "remove the one that should not be there")
	if r := runRTM(t, "", "server", "--name", in.name, "--socket", in.socket, "--store", second, "--fresh", "--exit-at-eof"); r.code != 1 {
		t.Errorf("--fresh on a store with two names: exit %d, stderr %q", r.code, r.stderr)
	}
	os.Remove(second)

	// The client's side: a store made writable by others while its server
	// runs is not mapped.
	os.Chmod(in.store, 0o600)
	srv = in.server()
	os.Chmod(in.store, 0o606)
	r := runRTM(t, "", "client", "--socket", in.socket, "-c", "lookup 00:1a:2b:3c:4d:5e")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "store "+in.store+" is writable by group or others (mode 0606)") || strings.Contains(r.stderr, "listening") {
		t.Fatalf("client of a store others may write: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	os.Chmod(in.store, 0o600)
	// A FIFO in the store's place (the store removed under its server,
	// then another uid's mkfifo) is refused at once: an open for reading
	// would have waited for a writer, and the client with it, for good.
	aside := in.store + ".aside"
	if err := os.Rename(in.store, aside); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(in.store, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, exec.Command(rtmBin, "client", "--socket", in.socket, "-c", "lookup 00:1a:2b:3c:4d:5e"), "", 10*time.Second)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "store "+in.store+" is not a regular file") {
		t.Errorf("client of a FIFO in the store's place: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	os.Remove(in.store)
	if err := os.Rename(aside, in.store); err != nil {
		t.Fatal(err)
	}
	if got := in.dump(); !strings.Contains(got, "00:1a:2b:3c:4d:5e 10.1.1.7") {
		t.Fatalf("client of the store as it should be: %q", got)
	}
}

// TestGroupReadsNeverWrites: with --group the socket is 0660 and the store
// 0640. A member of the server's group whose uid the server does not
// allow may read the store but not open it for writing, and the server
// refuses its connection; allowed, it reads through the server. The modes
// follow the flags of each start: without --group an existing store goes
// back to 0600, with it to 0640, and the banner says so.
func TestGroupReadsNeverWrites(t *testing.T) {
	in, bin := nobodyInstance(t)
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{uint32(os.Getegid())}}
	modes := func(sock, store os.FileMode) {
		t.Helper()
		for p, want := range map[string]os.FileMode{in.socket: sock, in.store: store} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Fatalf("%s: mode %v (%v), want %04o", p, fi.Mode().Perm(), err, want)
			}
		}
	}
	open := func(redirect string) result {
		t.Helper()
		return runCmd(t, commandAs(member, nil, "sh", "-c", "exec 3"+redirect+`"$1"`, "sh", in.store), "", 10*time.Second)
	}
	srv := in.server("--group")
	srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	modes(0o660, 0o640)
	if r := open("<>"); r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("a group member opened the store read-write: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := open("<"); r.code != 0 {
		t.Fatalf("a group member could not read the store: %s", r.stderr)
	}
	r := runCmd(t, commandAs(member, nil, bin, "client", "--socket", in.socket, "-c", "show macs"), "", 20*time.Second)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "uid 65534 may not connect") {
		t.Fatalf("a group member the server does not allow: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A member that takes a flock of the store, or a read lock of it
	// (F_OFD_SETLKW), as soon as the server lets go of it keeps no server
	// out: what admits a server is the lock of a file beside the store
	// that only its uid can open. A read lock held the store from every
	// later server, --fresh too.
	holder := commandAs(member, nil, "flock", "--exclusive", in.store, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	// It holds the lock until the test ends.
	lockerIn, said, _ := startRole(t, commandAs(member, []string{rtmtest.RoleEnv + "=readlock", "RTM_READLOCK=" + in.store}, roleBinary(t), "-test.run=^$"))
	if line, err := said.ReadString('\n'); line != "waiting\n" {
		t.Fatalf("read locker: %q (%v)", line, err)
	}
	srv.send("quit")
	srv.wait(10 * time.Second)
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		b, _ := os.ReadFile("/proc/locks")
		return strings.Contains(string(b), fmt.Sprintf("FLOCK  ADVISORY  WRITE %d ", holder.Process.Pid))
	}) {
		t.Fatal("the member's flock was never taken")
	}
	if line, err := said.ReadString('\n'); line != "locked\n" {
		t.Fatalf("read locker: %q (%v)", line, err)
	}
	holds := func(ip string) string {
		t.Helper()
		fmt.Fprintln(lockerIn, ip)
		line, err := said.ReadString('\n')
		if err != nil {
			t.Fatalf("read locker: %v", err)
		}
		return strings.TrimSpace(line)
	}
	if got := holds("10.1.1.7"); got != "found" {
		t.Fatalf("the member's open store: 10.1.1.7 %s", got)
	}

	// Without --group the member's access is taken back, the store it
	// still has open too: the server copies the store to a new file in
	// its place (it had chmodded the old one, which the member went on
	// reading, every later change with it).
	srv = in.server()
	modes(0o600, 0o600)
	if !strings.Contains(srv.errb.String(), "(reopened, mode 0640 -> 0600 in a new file: whoever had the old one open sees no later change)") {
		t.Fatalf("banner without --group: %s", srv.errb)
	}
	srv.must("C,02:00:00:00:be:ef,222.173.190.239")
	if r := runRTM(t, "", "client", "--socket", in.socket, "-c", "lookup 02:00:00:00:be:ef"); r.code != 0 || r.stdout != "02:00:00:00:be:ef 222.173.190.239\n" {
		t.Fatalf("the owner's client after the store was copied: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := holds("222.173.190.239"); got != "absent" {
		t.Fatalf("a change made after the member's access was taken away is %s in the store it has open", got)
	}
	srv.send("quit")
	srv.wait(10 * time.Second)

	srv = in.server("--group", "--allow-uid", "65534")
	modes(0o660, 0o640)
	if !strings.Contains(srv.errb.String(), "(reopened, mode 0600 -> 0640)") {
		t.Fatalf("banner with --group: %s", srv.errb)
	}
	r = runCmd(t, commandAs(member, nil, bin, "client", "--socket", in.socket, "-c", "show macs"), "", 20*time.Second)
	if r.code != 0 || r.stdout != "00:1a:2b:3c:4d:5e 10.1.1.7\n02:00:00:00:be:ef 222.173.190.239\n" {
		t.Fatalf("an allowed group member: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestGroupThroughTheRuntimeDirectory: a server started with --group and
// no --socket makes its runtime directory, of its group, mode 0710, so
// that a member it allows reaches the 0660 socket there; a uid outside
// the group is stopped at the directory, and told which and why. Where
// the members cannot pass a directory that is not rtm's to open
// (XDG_RUNTIME_DIR at 0700), or a runtime directory of another group,
// the server says so as it starts.
func TestGroupThroughTheRuntimeDirectory(t *testing.T) {
	in, bin := nobodyInstance(t)
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{uint32(os.Getegid())}}
	runtimeDir := func(mode os.FileMode) string {
		dir, err := os.MkdirTemp("", "rtm-runtime-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, mode)
		return dir
	}
	server := func(runtime string) *proc {
		cmd := exec.Command(rtmBin, "server", "--framed", "--name", in.name, "--store", in.store, "--group", "--allow-uid", "65534")
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime)
		p := startCmd(t, cmd)
		p.must("")
		in.waitBanner(p) // its warnings come before it
		return p
	}

	open := runtimeDir(0o755)
	srv := server(open)
	dir := filepath.Join(open, "rtm")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o710 || fi.Sys().(*syscall.Stat_t).Gid != uint32(os.Getegid()) {
		t.Fatalf("runtime directory %s: %v (%v); want mode 0710 and the server's group", dir, fi.Mode(), err)
	}
	if strings.Contains(srv.errb.String(), "cannot reach") {
		t.Errorf("a warning with the way open: %s", srv.errb)
	}
	srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	socket := filepath.Join(dir, in.name+".sock")
	r := runCmd(t, commandAs(member, nil, bin, "client", "--socket", socket, "-c", "show macs"), "", 20*time.Second)
	if r.code != 0 || r.stdout != "00:1a:2b:3c:4d:5e 10.1.1.7\n" {
		t.Fatalf("a member through the runtime directory: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, commandAs(nobody, nil, bin, "client", "--socket", socket, "-c", "show macs"), "", 20*time.Second)
	if want := "permission denied on the directory " + dir + " (mode 0710"; r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "be in the server's group") {
		t.Fatalf("a uid outside the group: exit %d, stdout %q, stderr %q; want 1, %q, and to be in the group", r.code, r.stdout, r.stderr, want)
	}
	srv.send("quit")
	srv.wait(10 * time.Second)

	closed := runtimeDir(0o700)
	srv = server(closed)
	if want := "cannot reach the socket " + filepath.Join(closed, "rtm", in.name+".sock") + ": the directory " + closed + " (mode 0700"; !strings.Contains(srv.errb.String(), want) {
		t.Fatalf("no warning %q: %s", want, srv.errb)
	}
	// A member stopped above the server's own directory is told to have
	// that one opened, or the socket kept elsewhere: not to be in the
	// group it is in.
	r = runCmd(t, commandAs(member, nil, bin, "client", "--socket", filepath.Join(closed, "rtm", in.name+".sock"), "-c", "show macs"), "", 20*time.Second)
	fix := "on the way to the socket: its owner must let you through (chmod g+x or o+x), or the server keep its socket in a directory you can reach (--socket)"
	if want := "permission denied on the directory " + closed + " (mode 0700"; r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, fix) {
		t.Fatalf("a member stopped above the runtime directory: exit %d, stderr %q; want 1, %q and %q", r.code, r.stderr, want, fix)
	}
	srv.send("quit")
	srv.wait(10 * time.Second)

	// A runtime directory of another group is left as it is (its members
	// may be another server's), and named.
	other := runtimeDir(0o755)
	dir = filepath.Join(other, "rtm")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, 0, 65534)
	srv = server(other)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Fatalf("runtime directory of group 65534: %v (%v); want it left 0700, of group 65534", fi.Mode(), err)
	}
	if want := "the directory " + dir + " (mode 0700, uid 0, group 65534) does not let them through"; !strings.Contains(srv.errb.String(), want) {
		t.Fatalf("no warning %q: %s", want, srv.errb)
	}
	srv.send("quit")
	srv.wait(10 * time.Second)
}

// TestReadersCannotHoldTheServer: the clients of a uid that may only read
// hold none of the server's memory with requests whose answers they never
// read (each of a request's changes is refused, and the answer to 65,000
// of them is megabytes), and cannot take the places kept for the uids
// that may write.
func TestReadersCannotHoldTheServer(t *testing.T) {
	in, _ := nobodyInstance(t)
	role := roleBinary(t)
	const most = 48 // of which 48 - 6 for readers
	srv := in.server("--group", "--allow-uid", "65534", "--max-clients", strconv.Itoa(most))
	srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	readers := func(conns int, flood bool) {
		t.Helper()
		line, errb := startReaders(t, role, fmt.Sprintf("%s %d %v", in.socket, conns, flood))
		if want := fmt.Sprintf("ready %d\n", conns); line != want {
			t.Fatalf("readers: %q, want %q; stderr %s", line, want, errb.String())
		}
	}
	countReaders := func() int { return strings.Count("\n"+srv.must("show clients"), "\nreader-") }

	pid := srv.fp.Pid()
	before := rssKB(t, pid)
	readers(40, true)
	// Each had the first packets of its answer when it said ready: the
	// server made every refusal it was going to hold.
	if grew := rssKB(t, pid) - before; grew > 32<<10 {
		t.Errorf("server RSS grew by %d KiB with 40 readers that never read the answers to their requests (bound 32 MiB)", grew)
	}
	if got := srv.must("show macs"); got != "00:1a:2b:3c:4d:5e 10.1.1.7\n" {
		t.Errorf("after the readers' flushes: %q", got)
	}
	// 2 more readers get in, the rest is kept for the server's uid.
	readers(8, false)
	if !rtmtest.WaitFor(10*time.Second, func() bool { return countReaders() == most-most/8 }) {
		t.Fatalf("%d readers admitted, want %d:\n%s", countReaders(), most-most/8, srv.must("show clients"))
	}
	r := runRTM(t, "", "client", "--socket", in.socket, "--client-name", "owner", "-c", "C,00:00:00:00:00:01,10.0.0.1", "-c", "show clients count")
	if r.code != 0 || r.stdout != fmt.Sprintf("%d\n", most-most/8+1) {
		t.Fatalf("the owner's client beside the readers: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if n := countReaders(); n != most-most/8 {
		t.Errorf("%d readers admitted in the end, want %d", n, most-most/8)
	}
}

// TestReadersCannotTakeTheQuestions: a uid that may only read, asking on
// as many connections as it can (each holds its place until the server
// drops it, seconds later), gets 56 of the 64 places for questions; the
// server's own uid still asks (rtm ls asks a server whose store is
// elsewhere, and --to-kernel asks where the server's routes come from).
func TestReadersCannotTakeTheQuestions(t *testing.T) {
	in, _ := nobodyInstance(t)
	role := roleBinary(t)
	srv := in.server("--group", "--allow-uid", "65534")
	// Each reader's connection holds its place for 5 s from its welcome
	// (the server's askTime): the owner asks well within it, and a reader
	// asking once more after the owner is still refused, so the places
	// were all held when the owner asked.
	line, errb := startReaders(t, role, in.socket+" 70 ask")
	if want := "ready 56 busy 14; "; !strings.HasPrefix(line, want) {
		t.Fatalf("readers asking on 70 connections: %q, want %q…; stderr %s", line, want, errb.String())
	}
	if !strings.Contains(line, "a uid that may only read asks on 56 of them") {
		t.Errorf("the readers' refusals do not say why: %s", line)
	}
	var info proto.ServerInfo
	if err := proto.Ask(in.socket, nil, proto.QueryInfo, &info); err != nil || info.PID != srv.fp.Pid() {
		t.Fatalf("the owner's question beside 56 of a reader's: %v (pid %d, want %d)", err, info.PID, srv.fp.Pid())
	}
	if line, _ := startReaders(t, role, in.socket+" 1 ask"); !strings.HasPrefix(line, "ready 0 busy 1; ") {
		t.Fatalf("a reader's question after the owner's: %q, want it refused (the places given back too soon to tell)", line)
	}
}

// roleBinary copies this test binary where uid 65534 can run it, for its
// roles (readersRole, readlockRole, squatRole).
func roleBinary(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return nobodyCopy(t, exe, "rtm.test")
}

// startReaders starts readersRole from role, a copy of the test binary,
// as uid 65534 in the test's group, with RTM_READERS set to arg, and
// returns its first line and its stderr. It runs until the test ends.
func startReaders(t *testing.T, role, arg string) (string, *syncBuffer) {
	t.Helper()
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{uint32(os.Getegid())}}
	cmd := commandAs(member, []string{rtmtest.RoleEnv + "=readers", "RTM_READERS=" + arg}, role, "-test.run=^$")
	_, out, errb := startRole(t, cmd)
	first := make(chan string, 1)
	go func() {
		line, _ := out.ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		return line, errb
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("readers (%s) said nothing in 30 s", arg)
		return "", nil
	}
}

// readersRole is a uid's clients that may only read, as RTM_READERS
// says ("SOCKET CONNS MODE"): CONNS connections that say hello and, if
// MODE is true, send one request of as many changes as a packet holds
// (one-byte flushes), then wait for the first bytes of its answer and
// read no further. It says "ready CONNS", and holds them until stdin
// ends. With MODE ask, each says the hello of a connection that only
// asks, and asks nothing: it says "ready N busy M; REFUSAL", the N the
// server welcomed, the M it refused as busy, and the first refusal.
func readersRole() int {
	f := strings.Fields(os.Getenv("RTM_READERS"))
	conns, _ := strconv.Atoi(f[1])
	flood := f[2] == "true"
	if f[2] == "ask" {
		return askersRole(f[0], conns)
	}
	flush := proto.AppendChange(nil, entry.Change{Op: entry.Flush, Table: entry.MACs}, true)
	n := proto.MaxRequest / len(flush)
	req := make([]byte, proto.HeaderSize, proto.MaxPacket)
	proto.PutHeader(req, proto.Header{Kind: proto.KindRequest, Count: uint32(n), Seq: 1})
	req = binary.LittleEndian.AppendUint64(req, 1) // epoch
	for range n {
		req = append(req, flush...)
	}
	held := make([]*net.UnixConn, 0, conns)
	for i := range conns {
		uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: f[0], Net: "unixpacket"})
		if err == nil {
			_, err = uc.Write(helloPacket(fmt.Sprintf("reader-%d", i)))
		}
		if err == nil && flood {
			if _, err = uc.Write(req); err == nil {
				err = waitQueued(uc, 20*time.Second)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
			return 1
		}
		held = append(held, uc)
	}
	fmt.Printf("ready %d\n", len(held))
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// askersRole is readersRole's ask mode.
func askersRole(socket string, conns int) int {
	welcomed, refusals, err := holdQuestionPlaces(socket, conns)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	first := ""
	if len(refusals) > 0 {
		first = "; " + refusals[0]
	}
	fmt.Printf("ready %d busy %d%s\n", len(welcomed), len(refusals), first)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// holdQuestionPlaces opens conns connections to socket that say the hello
// of one that only asks, and ask nothing: each the server welcomes holds
// one of its places for questions until it is closed, or for the
// seconds the server gives a question. It returns those, and the
// refusals of the others as busy.
func holdQuestionPlaces(socket string, conns int) (welcomed []*net.UnixConn, refusals []string, err error) {
	hello := make([]byte, proto.HeaderSize, proto.HeaderSize+16)
	proto.PutHeader(hello, proto.Header{Kind: proto.KindHello, Flags: proto.FlagQueryOnly})
	buf := make([]byte, 4096)
	for i := range conns {
		uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socket, Net: "unixpacket"})
		if err == nil {
			_, err = uc.Write(append(hello, fmt.Sprintf("asker-%d", i)...))
		}
		n := 0
		if err == nil {
			uc.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err = uc.Read(buf)
		}
		var h proto.Header
		if err == nil {
			h, err = proto.ParseHeader(buf[:n])
		}
		switch {
		case err != nil:
			return welcomed, refusals, fmt.Errorf("connection %d: %w", i, err)
		case h.Kind == proto.KindWelcome:
			welcomed = append(welcomed, uc)
		case h.Kind == proto.KindError && h.Flags&proto.FlagRetry != 0:
			refusals = append(refusals, fmt.Sprintf("connection %d: %s", i, buf[proto.HeaderSize:n]))
			uc.Close()
		default:
			uc.Close()
			return welcomed, refusals, fmt.Errorf("connection %d: %v %q", i, h.Kind, buf[proto.HeaderSize:n])
		}
	}
	return welcomed, refusals, nil
}

// readlockRole opens the store RTM_READLOCK names for reading, as a
// member of a --group store may, and waits for a read lock of all of it
// (F_OFD_SETLKW): it says "waiting", then "locked" once it has it. Then,
// for each line of stdin, an IPv4 address, it says "found" or "absent":
// whether the file it holds open has that address in a slot. It holds
// the file and the lock until stdin ends.
func readlockRole() int {
	f, err := os.Open(os.Getenv("RTM_READLOCK"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("waiting")
	lk := unix.Flock_t{Type: unix.F_RDLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		ip := netip.MustParseAddr(lines.Text()).As4()
		// A slot holds an IPv4 address as the little-endian word of its
		// big-endian value (store/slot.go).
		word := binary.LittleEndian.AppendUint64(nil, uint64(binary.BigEndian.Uint32(ip[:])))
		b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if bytes.Contains(b, word) {
			fmt.Println("found")
		} else {
			fmt.Println("absent")
		}
	}
	return 0
}

// waitQueued waits until bytes beyond the welcome wait on uc: the start
// of an answer.
func waitQueued(uc *net.UnixConn, limit time.Duration) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		var n int
		var ierr error
		rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if ierr != nil {
			return ierr
		}
		if n > proto.HeaderSize+8+len("/dev/shm/rtm.")+64 { // more than the welcome
			return nil
		}
	}
	return fmt.Errorf("no answer queued within %v", limit)
}

// TestStoreInADirectoryNotWritable: a server whose store is in a
// directory it may not write (its own store, in a directory of root's)
// can make no lock file beside it; the store's own write lock then
// admits it, as before there was a lock file, and a second server is
// still refused. It failed to start, saying "no such file or directory".
func TestStoreInADirectoryNotWritable(t *testing.T) {
	_, bin := nobodyInstance(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	dir := newDir(t, shmDir(), 0o755)
	sockDir := newDir(t, "", 0o700)
	for _, d := range []string{dir, sockDir} {
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	st := filepath.Join(dir, "st")
	args := func(sock string) []string {
		return []string{"server", "--store", st, "--socket", filepath.Join(sockDir, sock), "--exit-at-eof"}
	}
	if r := runCmd(t, commandAs(nobody, nil, bin, args("a.sock")...), "C,00:1a:2b:3c:4d:5e,10.1.1.7\n", 20*time.Second); r.code != 0 {
		t.Fatalf("making the store: exit %d, %s", r.code, r.stderr)
	}
	if err := os.Chown(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	first := commandAs(nobody, nil, bin, args("a.sock")...)
	hold, err := first.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { hold.Close(); first.Wait() }()
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(firstErr.String(), "(reopened)") }) {
		t.Fatalf("a server on its store in a directory it may not write: %s", firstErr.String())
	}
	r := runCmd(t, commandAs(nobody, nil, bin, args("b.sock")...), "", 20*time.Second)
	if r.code != 1 || !strings.Contains(r.stderr, "is in use by another rtm server (pid ") {
		t.Fatalf("a second server on that store: exit %d, %s", r.code, r.stderr)
	}
	if _, err := os.Lstat(store.LockPath(st)); !os.IsNotExist(err) {
		t.Errorf("a lock file in a directory the server may not write: %v", err)
	}
}
