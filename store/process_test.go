package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// Multi-process robustness tests: the children are this test binary
// re-executed in a role (rtmtest.Child).

var roles = rtmtest.Roles{
	"race":        raceChild,
	"torn-reader": tornReader,
	"crash":       crashChild,
	"ro-write":    roWriteChild,
}

// ---- two servers racing to create the same store ----

func raceChild() int {
	start := rtmtest.EnvInt("RTM_START")
	time.Sleep(time.Until(time.Unix(0, int64(start))))
	s, err := Open(Options{Path: os.Getenv("RTM_PATH"), Capacity: 1024, RouteCapacity: 64})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	for i := range 100 {
		if err := s.CreateMAC(testMAC(i), crashOld(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
	}
	for i := range 10 {
		if err := s.CreateRoute(crashRoute(i, false)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
	}
	fmt.Printf("ready %d\n", os.Getpid())
	io.Copy(io.Discard, os.Stdin) // hold the store until killed
	return 0
}

func TestCreateRace(t *testing.T) {
	rounds := rtmtest.Size(3, 20)
	for round := range rounds {
		path := testPath(t)
		start := time.Now().Add(300 * time.Millisecond).UnixNano()
		type result struct {
			cmd    *exec.Cmd
			stdout *bufio.Reader
			stderr bytes.Buffer
			stdin  io.WriteCloser
			done   chan error
		}
		var rs [2]*result
		for i := range rs {
			r := &result{done: make(chan error, 1)}
			r.cmd = rtmtest.Child(t, "race", "RTM_PATH="+path, fmt.Sprintf("RTM_START=%d", start))
			r.cmd.Stderr = &r.stderr
			out, err := r.cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			r.stdout = bufio.NewReader(out)
			if r.stdin, err = r.cmd.StdinPipe(); err != nil {
				t.Fatal(err)
			}
			if err := r.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			rs[i] = r
		}
		var winner, loser *result
		var winnerPID int
		for _, r := range rs {
			line, err := r.stdout.ReadString('\n')
			if err == nil && strings.HasPrefix(line, "ready ") {
				if winner != nil {
					t.Fatalf("round %d: both children own the store", round)
				}
				winner = r
				winnerPID, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
				continue
			}
			loser = r
			loser.done <- r.cmd.Wait()
		}
		if winner == nil || loser == nil {
			for _, r := range rs {
				r.cmd.Process.Kill()
				r.cmd.Wait()
			}
			t.Fatalf("round %d: want exactly one owner; stderr: %q %q", round, rs[0].stderr.String(), rs[1].stderr.String())
		}
		if err := <-loser.done; err == nil {
			t.Errorf("round %d: loser exited 0", round)
		}
		if msg := loser.stderr.String(); !strings.Contains(msg, fmt.Sprintf("pid %d", winnerPID)) {
			t.Errorf("round %d: loser said %q, want the owner pid %d", round, msg, winnerPID)
		}
		// The store is valid while the winner holds it.
		rd, err := OpenReader(path, os.Getuid())
		if err != nil {
			t.Fatalf("round %d: reader on the winner's store: %v", round, err)
		}
		if rd.Count() != 100 {
			t.Errorf("round %d: reader counts %d", round, rd.Count())
		}
		rd.Close()
		winner.cmd.Process.Signal(syscall.SIGKILL)
		winner.cmd.Wait()
		winner.stdin.Close()

		s, err := Open(Options{Path: path})
		if err != nil {
			t.Fatalf("round %d: successor: %v", round, err)
		}
		rec := s.Recovery()
		if !rec.WasDirty || rec.Created || rec.PrevPID != winnerPID {
			t.Errorf("round %d: successor Recovery %+v, want dirty with PrevPID %d", round, rec, winnerPID)
		}
		if s.MACCount() != 100 || s.RouteCount() != 10 {
			t.Errorf("round %d: successor has %d MACs, %d routes", round, s.MACCount(), s.RouteCount())
		}
		for i := range 100 {
			if a, ok := s.LookupMAC(testMAC(i)); !ok || a != crashOld(i) {
				t.Errorf("round %d: MAC %d = %v %v", round, i, a, ok)
			}
		}
		s.Close()
	}
}

// ---- torn reads ----

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// tornValue is the self-checking value the writer stores for key i at
// its c-th write: IPv6 on even writes (MAC, 48-bit counter, 32-bit
// check), IPv4 on odd ones (key index, 12-bit counter, 8-bit check).
func tornValue(i int, c uint64) netip.Addr {
	m := testMAC(i)
	if c%2 == 0 {
		var b [16]byte
		copy(b[:6], m[:])
		for k := range 6 {
			b[6+k] = byte(c >> (8 * (5 - k)))
		}
		chk := uint32(mix64(m.Uint64() ^ c<<16))
		b[12], b[13], b[14], b[15] = byte(chk>>24), byte(chk>>16), byte(chk>>8), byte(chk)
		return netip.AddrFrom16(b)
	}
	c &= 0xfff
	v := uint32(i)<<20 | uint32(c)<<8 | uint32(mix64(uint64(i)<<12|c)&0xff)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// tornValid says whether a is a value the writer could have stored for i.
func tornValid(i int, a netip.Addr) bool {
	if a.Is6() {
		b := a.As16()
		var c uint64
		for k := range 6 {
			c = c<<8 | uint64(b[6+k])
		}
		return c%2 == 0 && tornValue(i, c) == a
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	c := uint64(v>>8) & 0xfff
	return c%2 == 1 && int(v>>20) == i && tornValue(i, c) == a
}

func tornChurn(i int) bool { return i%4 == 3 }

func tornReader() int {
	rd, err := OpenReader(os.Getenv("RTM_PATH"), os.Getuid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	keys, lookups := rtmtest.EnvInt("RTM_KEYS"), rtmtest.EnvInt("RTM_LOOKUPS")
	rng := rand.New(rand.NewPCG(uint64(rtmtest.EnvInt("RTM_SEED")), 1))
	var hits, misses, busy, bad int
	for range lookups {
		i := rng.IntN(keys)
		a, err := rd.Lookup(testMAC(i))
		switch {
		case err == nil:
			hits++
			if !tornValid(i, a) {
				bad++
				if bad <= 10 {
					fmt.Fprintf(os.Stderr, "key %d: read %v, never written\n", i, a)
				}
			}
		case err == entry.ErrNotFound:
			misses++
			if !tornChurn(i) {
				bad++
				if bad <= 10 {
					fmt.Fprintf(os.Stderr, "key %d: not found, but it is never deleted\n", i)
				}
			}
		case err == ErrBusy:
			busy++
		default:
			fmt.Fprintf(os.Stderr, "key %d: %v\n", i, err)
			return 4
		}
	}
	fmt.Printf("%d %d %d %d\n", hits, misses, busy, bad)
	if bad > 0 {
		return 1
	}
	return 0
}

// TestTornReads: 4 reader processes look up random keys of a small table
// while this process rewrites, deletes and re-creates them with
// self-checking values; every value read must be one the writer wrote,
// and no key it never deletes may go missing. 2·10⁶ lookups per reader
// by default (a reader that skips one seqlock check reads a torn value
// within the first few hundred thousand), 5·10⁷ with RTM_LONG=1.
func TestTornReads(t *testing.T) {
	const keys, readers = 1024, 4
	lookups := rtmtest.Size(2_000_000, 50_000_000)
	if testing.Short() {
		lookups = 1_000_000
	}
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: keys, RouteCapacity: 1})
	counter := make([]uint64, keys)
	present := make([]bool, keys)
	for i := range keys {
		if err := s.CreateMAC(testMAC(i), tornValue(i, 0)); err != nil {
			t.Fatal(err)
		}
		present[i] = true
	}
	type out struct {
		stdout, stderr bytes.Buffer
		err            error
	}
	outs := make([]*out, readers)
	done := make(chan int, readers)
	for r := range readers {
		o := &out{}
		outs[r] = o
		cmd := rtmtest.Child(t, "torn-reader", "RTM_PATH="+path, fmt.Sprintf("RTM_KEYS=%d", keys),
			fmt.Sprintf("RTM_LOOKUPS=%d", lookups), fmt.Sprintf("RTM_SEED=%d", r+1))
		cmd.Stdout, cmd.Stderr = &o.stdout, &o.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { o.err = cmd.Wait(); done <- r }()
	}
	rng := rand.New(rand.NewPCG(42, 42))
	began := time.Now()
	var writes, deletes, moves int
	for finished := 0; finished < readers; {
		for range 1024 {
			i := rng.IntN(keys)
			counter[i]++
			m := testMAC(i)
			var err error
			switch {
			case tornChurn(i) && rng.IntN(2) == 0 && present[i]:
				err = s.DeleteMAC(m)
				present[i] = false
				deletes++
			case present[i]:
				err = s.UpdateMAC(m, tornValue(i, counter[i]))
			default:
				err = s.CreateMAC(m, tornValue(i, counter[i]))
				present[i] = true
			}
			if err != nil {
				t.Fatal(err)
			}
			writes++
		}
		moves = int(s.hdr.epoch.Load() / 2)
		select {
		case <-done:
			finished++
		default:
		}
	}
	elapsed := time.Since(began)
	var hits, misses, busy, bads int
	for r, o := range outs {
		if o.err != nil {
			t.Errorf("reader %d: %v\n%s", r, o.err, o.stderr.String())
		}
		var h, m, b, bad int
		if _, err := fmt.Sscan(o.stdout.String(), &h, &m, &b, &bad); err != nil {
			t.Errorf("reader %d output %q: %v", r, o.stdout.String(), err)
		}
		hits, misses, busy, bads = hits+h, misses+m, busy+b, bads+bad
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d readers × %d lookups: %d hits, %d misses (deleted keys), %d busy, %d bad; writer: %d writes (%d deletes, %d shifting) in %v (%.1f M writes/s)",
		readers, lookups, hits, misses, busy, bads, writes, deletes, moves, elapsed.Round(time.Millisecond), float64(writes)/elapsed.Seconds()/1e6)
}

// ---- crash at failpoints ----

func crashOld(i int) netip.Addr {
	if i%2 == 0 {
		return v4(i)
	}
	return v6(i)
}

func crashNew(i int) netip.Addr {
	if i%2 == 0 {
		return v6(1000 + i)
	}
	return v4(1000 + i)
}

func crashRoute(i int, updated bool) entry.Route {
	r := entry.Route{
		Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16),
		Gateway: netip.AddrFrom4([4]byte{192, 168, 0, byte(i)}),
		Dev:     fmt.Sprintf("eth%d", i),
	}
	if i%2 == 1 {
		r.Prefix = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i)}), 48)
		r.Gateway = netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(i)})
	}
	if updated {
		r.Gateway = r.Gateway.Next()
		r.Dev = fmt.Sprintf("new%d", i)
	}
	return r
}

const (
	crashKeys      = 64 // keys 0..59 exist at the start; the table holds 64
	crashPresent   = 60
	crashRoutes    = 16 // routes 0..7 exist at the start
	crashRoutesOld = 8
)

// crashOps are the operations a crash child runs, each over many keys so
// that the failpoint's n-th hit falls in the middle of one.
var crashOps = map[string]func(s *Store) error{
	"mac-update": func(s *Store) error {
		for i := range crashPresent {
			if err := s.UpdateMAC(testMAC(i), crashNew(i)); err != nil {
				return err
			}
		}
		return nil
	},
	"mac-create": func(s *Store) error {
		for i := crashPresent; i < crashKeys; i++ {
			if err := s.CreateMAC(testMAC(i), crashNew(i)); err != nil {
				return err
			}
		}
		return nil
	},
	"mac-delete": func(s *Store) error {
		for i := range crashPresent {
			if err := s.DeleteMAC(testMAC(i)); err != nil {
				return err
			}
		}
		return nil
	},
	"mac-flush": func(s *Store) error { return s.FlushMACs() },
	"route-create": func(s *Store) error {
		for i := crashRoutesOld; i < crashRoutes; i++ {
			if err := s.CreateRoute(crashRoute(i, true)); err != nil {
				return err
			}
		}
		return nil
	},
	"route-update": func(s *Store) error {
		for i := range crashRoutesOld {
			if err := s.UpdateRoute(crashRoute(i, true)); err != nil {
				return err
			}
		}
		return nil
	},
	"route-delete": func(s *Store) error {
		for i := range crashRoutesOld {
			if err := s.DeleteRoute(crashRoute(i, false).Prefix); err != nil {
				return err
			}
		}
		return nil
	},
	"route-flush": func(s *Store) error { return s.FlushRoutes() },
}

func crashChild() int {
	s, err := Open(Options{Path: os.Getenv("RTM_PATH")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	point, hit, hits := os.Getenv("RTM_POINT"), rtmtest.EnvInt("RTM_HIT"), 0
	failpoint = func(name string) {
		if name == point {
			if hits++; hits == hit {
				unix.Kill(unix.Getpid(), unix.SIGKILL)
				select {}
			}
		}
	}
	if err := crashOps[os.Getenv("RTM_OP")](s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	fmt.Fprintf(os.Stderr, "failpoint %s hit %d times, not %d\n", point, hits, hit)
	return 7
}

// crashExpect returns the old and new value of MAC key i (invalid Addr
// for absent) under op.
func crashExpect(op string, i int) (old, new netip.Addr) {
	if i < crashPresent {
		old = crashOld(i)
	}
	new = old
	switch {
	case op == "mac-update" && i < crashPresent:
		new = crashNew(i)
	case op == "mac-create" && i >= crashPresent:
		new = crashNew(i)
	case op == "mac-delete" || op == "mac-flush":
		new = netip.Addr{}
	}
	return old, new
}

func crashExpectRoute(op string, i int) (old, new entry.Route) {
	if i < crashRoutesOld {
		old = crashRoute(i, false)
	}
	new = old
	switch {
	case op == "route-update" && i < crashRoutesOld:
		new = crashRoute(i, true)
	case op == "route-create" && i >= crashRoutesOld:
		new = crashRoute(i, true)
	case op == "route-delete" || op == "route-flush":
		new = entry.Route{}
	}
	return old, new
}

func TestCrashAtFailpoints(t *testing.T) {
	cases := []struct {
		op, point string
		hit       int
	}{
		{"mac-update", "journal.armed", 2},
		{"mac-update", "mac.seq", 1},
		{"mac-update", "mac.key", 3},
		{"mac-update", "mac.hi", 5},
		{"mac-update", "mac.lo", 7},
		{"mac-update", "journal.done", 4},
		{"mac-create", "mac.key", 2},
		{"mac-create", "mac.lo", 4},
		{"mac-delete", "shift.armed", 3},
		{"mac-delete", "shift.moved", 1},
		{"mac-delete", "shift.moved", 6},
		{"mac-delete", "shift.step", 2},
		{"mac-delete", "mac.key", 5},
		{"mac-delete", "mac.hi", 11},
		{"mac-delete", "mac.lo", 30},
		{"mac-delete", "journal.done", 9},
		{"mac-flush", "flush.slot", 10},
		{"mac-flush", "mac.key", 25},
		{"route-create", "route.mid", 2},
		{"route-update", "route.mid", 3},
		{"route-update", "journal.done", 1},
		{"route-delete", "route.mid", 4},
		{"route-delete", "journal.armed", 5},
		{"route-flush", "flush.route", 3},
		{"route-flush", "route.mid", 6},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s#%d", tc.op, tc.point, tc.hit), func(t *testing.T) {
			path := testPath(t)
			s, err := Open(Options{Path: path, Capacity: crashKeys, RouteCapacity: crashRoutes})
			if err != nil {
				t.Fatal(err)
			}
			for i := range crashPresent {
				if err := s.CreateMAC(testMAC(i), crashOld(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range crashRoutesOld {
				if err := s.CreateRoute(crashRoute(i, false)); err != nil {
					t.Fatal(err)
				}
			}
			gen := s.Generation()
			s.Close()

			cmd := rtmtest.Child(t, "crash", "RTM_PATH="+path, "RTM_OP="+tc.op, "RTM_POINT="+tc.point, fmt.Sprintf("RTM_HIT=%d", tc.hit))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed at the failpoint; stderr: %s", err, stderr.String())
			}
			childPID := cmd.Process.Pid

			// The dead writer's state is in place: a reader sees old or
			// new values, or ErrBusy, and never waits long.
			rd, err := OpenReader(path, os.Getuid())
			if err != nil {
				t.Fatal(err)
			}
			for i := range crashKeys {
				old, new := crashExpect(tc.op, i)
				began := time.Now()
				a, err := rd.Lookup(testMAC(i))
				if d := time.Since(began); d > 100*time.Millisecond {
					t.Errorf("reader waited %v for key %d", d, i)
				}
				switch {
				case err == ErrBusy:
				case err == entry.ErrNotFound && (!old.IsValid() || !new.IsValid()):
				case err == nil && (a == old || a == new):
				default:
					t.Errorf("reader, key %d: %v %v; want %v or %v", i, a, err, old, new)
				}
			}
			rd.Close()

			// During the repair the store names this process as its
			// writer: rtm ls and a client see a server starting, not the
			// dead one.
			repairPID := 0
			failpoint = func(string) {
				if in, err := Inspect(path); err == nil && repairPID == 0 {
					repairPID = in.WriterPID
				}
			}
			s2, err := Open(Options{Path: path})
			failpoint = nil
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s2.Close()
			rec := s2.Recovery()
			if rec.Repaired > 0 && repairPID != os.Getpid() {
				t.Errorf("during the repair the store named pid %d as its writer, not this process (%d)", repairPID, os.Getpid())
			}
			if !rec.WasDirty || !rec.JournalReplayed || rec.PrevPID != childPID || rec.Created {
				t.Errorf("Recovery %+v, want dirty, journal replayed, PrevPID %d", rec, childPID)
			}
			if s2.Generation() != gen {
				t.Errorf("generation changed")
			}
			if err := s2.Check(); err != nil {
				t.Fatal(err)
			}
			count := 0
			for i := range crashKeys {
				old, new := crashExpect(tc.op, i)
				a, ok := s2.LookupMAC(testMAC(i))
				if ok {
					count++
				}
				if a != old && a != new {
					t.Errorf("key %d = %v (present %v), want %v or %v", i, a, ok, old, new)
				}
			}
			if s2.MACCount() != count {
				t.Errorf("MACCount %d, found %d", s2.MACCount(), count)
			}
			for i := range crashRoutes {
				old, new := crashExpectRoute(tc.op, i)
				r, _ := s2.GetRoute(crashRoute(i, false).Prefix)
				if r != old && r != new {
					t.Errorf("route %d = %v, want %v or %v", i, r, old, new)
				}
			}
			t.Logf("Recovery %+v", rec)
		})
	}
}

// ---- the read-only mapping ----

func roWriteChild() int {
	rd, err := OpenReader(os.Getenv("RTM_PATH"), os.Getuid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	// Turn the fault into a panic carrying the address, so the parent
	// can tell it from any other way of dying.
	debug.SetPanicOnFault(true)
	defer func() {
		if e, ok := recover().(interface{ Addr() uintptr }); ok {
			fmt.Fprintf(os.Stderr, "fault at %#x\n", e.Addr())
			os.Exit(5)
		}
	}()
	rd.hdr.macCount.Store(12345)
	rd.macs[0].key.Store(keyUsed | 1)
	fmt.Fprintln(os.Stderr, "wrote through the read-only mapping")
	return 0
}

func TestReaderCannotWrite(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 64, RouteCapacity: 4})
	for i := range 10 {
		if err := s.CreateMAC(testMAC(i), v4(i)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := rtmtest.Child(t, "ro-write", "RTM_PATH="+path)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child survived a write through its mapping: %s", out)
	}
	var ee *exec.ExitError
	faulted := errors.As(err, &ee) && ee.ExitCode() == 5 && bytes.Contains(out, []byte("fault at 0x"))
	if !faulted && !(raceEnabled && bytes.Contains(out, []byte("sigpanic"))) {
		t.Errorf("child: %v, want a memory fault; output:\n%s", err, out)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the segment changed")
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// ---- no SIGBUS ----

func TestFullFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a 1 MiB tmpfs on %s (%v); the ENOSPC path is untested here", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	path := dir + "/rtm.store"
	_, err := Open(Options{Path: path, Capacity: 100_000})
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Open on a full tmpfs: %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("error %q should name the path and the size", err)
	}
	t.Logf("error: %v", err)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// A store that fits still works there.
	s, err := Open(Options{Path: path, Capacity: 1000, RouteCapacity: 100})
	if err != nil {
		t.Fatalf("small store on the tmpfs: %v", err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestZombieIsNotAlive: a process killed but not yet reaped by its
// parent (a supervisor that has not called wait, a slow init) still
// answers kill(pid, 0), and its store was called live: rtm ls said so,
// rtm rm refused it, and a client said its server ran. It is dead.
func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	reaped := false
	defer func() {
		if !reaped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	if !ProcessAlive(pid) {
		t.Fatalf("a running process (pid %d) is not alive", pid)
	}
	cmd.Process.Kill()
	zombie := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		i := bytes.LastIndexByte(b, ')')
		return err == nil && i >= 0 && bytes.HasPrefix(b[i:], []byte(") Z"))
	}
	if !rtmtest.WaitFor(10*time.Second, zombie) {
		t.Fatalf("pid %d never became a zombie", pid)
	}
	if ProcessAlive(pid) {
		t.Errorf("a killed process its parent has not reaped (pid %d, a zombie) is alive", pid)
	}
	cmd.Wait()
	reaped = true
	if ProcessAlive(pid) {
		t.Errorf("a reaped process (pid %d) is alive", pid)
	}
}
