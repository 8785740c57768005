// Package server is `rtm server`: the process that owns the tables. It
// opens the store and listens on the socket (proto.Start), takes changes
// from its --script files, its prompt or stdin (repl.Session), from its
// clients (proto), with --from-kernel from the kernel of its network
// namespace (kernel.Importer), and with --from-fpm from FRR's zebra
// (kernel.FPMImporter), and quits cleanly on quit, Ctrl-D, SIGINT or
// SIGTERM. Every source writes through the server's one path
// (proto.Server.Apply), each through an origin of its own.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"rtm/proto"
	"rtm/proto/kernel"
	"rtm/repl"
	"rtm/store"
)

// Main runs `rtm server` with args (the flags after the mode) and
// returns the exit status.
func Main(version string, args []string) int {
	repl.QuitOnSIGQUIT() // from the start: Ctrl-\ while it starts, or waits for a server
	// SIGTERM or SIGHUP while it starts (a kernel's routes imported, a
	// store repaired) is taken once it serves: a quit then closes the
	// store and removes the socket, where the signal's default action
	// left both as after a crash.
	repl.HoldSignals(true)
	var (
		f             repl.InstanceFlags
		storePath     string
		capacity      int
		routeCapacity int
		group         bool
		allow         []uint32
		allowWrite    []uint32
		exitAtEOF     bool
		maxClients    int
		fresh, unlink bool
		fromKernel    bool
		fromFPM       fpmFlag
		table         uint32
		prefer        int
		logBytes      int
	)
	fs := repl.NewFlagSet("server", "[flags]", repl.ServerAbout)
	f.Register(fs)
	fs.Lookup("socket").Usage += "; not another instance's (" + proto.DefaultSocket("OTHER") + "), whose clients would get this server's tables"
	fs.StringVar(&storePath, "store", "", "store `path` (default: "+proto.DefaultStore("NAME")+": rtm.NAME in $"+proto.StoreDirEnv+" if set, else in /dev/shm; a regular file survives reboots)")
	fs.IntVar(&capacity, "capacity", store.DefaultCapacity, "MAC table `entries` when the store is created (an existing store keeps its own, and a different one given is refused; with --fresh it is created anew)")
	fs.IntVar(&routeCapacity, "route-capacity", store.DefaultRouteCapacity, "route table `entries` when the store is created (as --capacity)")
	fs.IntVar(&logBytes, "log-bytes", proto.DefaultLogBytes, "`bytes` of recent changes kept for clients that fall behind, in chunks of 65,520 bytes, a packet's payload (rounded up; two at least, 64 GiB at most: show info says how many bytes); a client further behind gets a fresh snapshot")
	fs.BoolVar(&group, "group", false, "let the owner's group connect and read (socket mode 0660, store 0640: group members read the store, never write it; an existing store is given these modes, and 0600 without --group; the runtime directory, if of that group, becomes 0710, and a directory the group cannot pass is named at start)")
	repl.ListFlag(fs, &allow, "allow-uid", "also accept clients of this `uid`, to read (repeatable)", repl.ParseUID)
	repl.ListFlag(fs, &allowWrite, "allow-write-uid", "also accept clients of this `uid`, to read and change the tables (repeatable; the server's own uid and root always may)", repl.ParseUID)
	fs.IntVar(&maxClients, "max-clients", proto.DefaultMaxClients, "admit at most this `many` clients at once; a uid that may only read only while more than an eighth of them are free (the rest is kept for the uids that may write); one more is told the server is full (a client that waits for the server tries again)")
	fs.BoolVar(&exitAtEOF, "exit-at-eof", false, "quit when piped stdin ends (default: keep serving until quit, SIGINT or SIGTERM; Ctrl-D at a terminal always quits, even with stdout piped)")
	fs.BoolVar(&fresh, "fresh", false, "start with empty tables even if the store holds some")
	fs.BoolVar(&unlink, "unlink", false, "remove the store on a clean quit (default: keep it for the next start)")
	fs.BoolVar(&fromKernel, "from-kernel", false, "mirror the kernel of this network namespace: dump its routes and neighbours, then follow them (implies --fresh; typed changes still work)")
	fs.Var(&fromFPM, "from-fpm", "be FRR zebra's dataplane: listen for its FPM connection (zebra's -M dplane_fpm_nl, and 'fpm address A port P' in its configuration) on `ADDR` (default "+kernel.DefaultFPMAddr.String()+"; a non-loopback address only if given; IPv4 or IPv6 as given) and take the routes zebra selects; from this host, only sockets of user "+kernel.ZebraUser+", root, the server's uid and --allow-write-uid (a kept store's routes stay until zebra's first replay ends, and those zebra did not send go then; --fresh starts empty; typed changes still work)")
	fs.Func("kernel-table", "with --from-kernel or --from-fpm: the routing `table` to follow, main or a number (default main)", func(v string) (err error) {
		table, err = kernel.ParseTable(v)
		return err
	})
	prefer = 4
	fs.Func("kernel-prefer", "with --from-kernel: the address `family` (4 or 6) whose neighbour wins when several IPs share one MAC (default 4)", func(v string) error {
		if v != "4" && v != "6" {
			return fmt.Errorf("want 4 or 6, got %q", v)
		}
		prefer = int(v[0] - '0')
		return nil
	})
	if rc := repl.ParseFlags(fs, fpmAddrArg(args)); rc >= 0 {
		return rc
	}
	err := f.Resolve()
	if owner, ok := proto.DefaultSocketOf(f.Socket); err == nil && ok && owner != f.Name {
		// Its clients, who find a server by its name, would get this
		// one's tables, and rtm ls and rm would take it for that
		// instance.
		err = fmt.Errorf("--socket %s is instance %s's socket, where clients of --name %s connect: serve it as `rtm server --name %s`, or give this server another socket path", f.Socket, owner, owner, owner)
	}
	if err == nil {
		err = repl.CheckTuning(fs, fromKernel || fromFPM.on, "--from-kernel or --from-fpm", "kernel-table")
	}
	if err == nil {
		err = repl.CheckTuning(fs, fromKernel, "--from-kernel", "kernel-prefer")
	}
	if err == nil && fromKernel && fromFPM.on {
		err = errors.New("--from-kernel and --from-fpm: give one (zebra installs its routes into the kernel too)")
	}
	if err == nil && maxClients < 1 {
		err = fmt.Errorf("--max-clients %d: want 1 or more", maxClients)
	}
	for _, c := range []struct {
		flag    string
		n, most int
	}{{"capacity", capacity, store.MaxCapacity}, {"route-capacity", routeCapacity, store.MaxRouteCapacity}} {
		if err == nil && repl.FlagGiven(fs, c.flag) && (c.n < 1 || c.n > c.most) {
			err = fmt.Errorf("--%s %d: want 1 to %d entries", c.flag, c.n, c.most)
		}
	}
	if err == nil && (logBytes < 1 || logBytes > proto.MaxLogBytes) {
		err = fmt.Errorf("--log-bytes %d: want 1 to %d (64 GiB)", logBytes, proto.MaxLogBytes)
	}
	if err == nil && storePath != "" {
		if fi, serr := os.Stat(storePath); strings.HasSuffix(storePath, "/") || serr == nil && fi.IsDir() {
			err = fmt.Errorf("--store %s: names a directory; give the path of the store's file (%s, say)", storePath, filepath.Join(storePath, "rtm."+f.Name))
		}
	}
	if dir := os.Getenv(proto.StoreDirEnv); err == nil && storePath == "" && dir != "" {
		// The stores' directory is the user's to make: said as such, not
		// as a lock file in it that cannot be made.
		if fi, serr := os.Stat(dir); serr != nil {
			err = fmt.Errorf("%s=%s: %w", proto.StoreDirEnv, dir, serr)
		} else if !fi.IsDir() {
			err = fmt.Errorf("%s=%s: not a directory; it names the directory of the stores", proto.StoreDirEnv, dir)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 2
	}
	// The kernel is the source: a kept store would hold entries it no
	// longer has, which the import would never delete, and its dump is
	// there at once. zebra's table comes back only once zebra has
	// connected again and replayed it: a kept store's routes serve until
	// then, and those zebra did not name go at the end of its replay
	// (FPMOptions.Held).
	fresh = fresh || fromKernel
	if storePath == "" {
		storePath = proto.DefaultStore(f.Name)
	}
	// Clients open the store at the path the server gives them, from
	// their own working directories: a relative one would be theirs.
	if abs, err := filepath.Abs(storePath); err == nil {
		storePath = abs
	}
	// Capacities size a store when it is created; given explicitly, they
	// must match an existing store's (or --fresh recreates it).
	opts := store.Options{Path: storePath}
	if repl.FlagGiven(fs, "capacity") {
		opts.Capacity = capacity
	}
	if repl.FlagGiven(fs, "route-capacity") {
		opts.RouteCapacity = routeCapacity
	}
	for _, w := range proto.AccessWarnings(group, allow, allowWrite) {
		fmt.Fprintln(os.Stderr, "rtm server: warning:", w)
	}
	if w := fdWarning(maxClients); w != "" {
		fmt.Fprintln(os.Stderr, "rtm server: warning:", w)
	}
	var imported *proto.KernelTable
	// Named in show info, so that a --to-kernel client in this namespace
	// does not install into the table the routes came from. A zebra that
	// reaches a loopback address runs in this namespace, and takes the
	// kernel's routes of its table as its own: installed there, a route
	// would come back through it, and outlive its withdrawal. A wildcard
	// address takes zebra's 127.0.0.1 too.
	if ns, err := kernel.NetNS(); err == nil {
		switch {
		case fromKernel:
			imported = &proto.KernelTable{NetNS: ns, Table: kernel.TableID(table), Source: "kernel"}
		case fromFPM.on && (fromFPM.addr.Addr().Unmap().IsLoopback() || fromFPM.addr.Addr().Unmap().IsUnspecified()):
			imported = &proto.KernelTable{NetNS: ns, Table: kernel.TableID(table), Source: "fpm"}
		}
	}
	console := repl.ProcessConsole()
	logger := repl.NewLogger(console)
	defer logger.Close(shutdownTimeout)
	srv, err := proto.Start(proto.ServerOptions{
		Name: f.Name, Version: version, Socket: f.Socket, Store: opts, Fresh: fresh, Unlink: unlink, LogBytes: logBytes,
		GroupAccess: group, AllowUIDs: allow, AllowWriteUIDs: allowWrite, MaxClients: maxClients,
		KernelImport: imported, Logf: logger.Printf,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		if errors.Is(err, store.ErrNotStore) {
			// rtm did not make the file: what it holds is not rtm's to
			// empty (--fresh refuses it too).
			rm := ""
			if storePath == proto.DefaultStore(f.Name) {
				rm = fmt.Sprintf(" (`rtm rm --force %s`)", f.Name)
			}
			fmt.Fprintf(os.Stderr, "(rtm leaves a file it did not make as it is: move it or remove it%s, or name another store with --store PATH)\n", rm)
		}
		return 1
	}
	if group {
		for _, w := range proto.ReachWarnings(f.Socket, storePath) {
			fmt.Fprintln(os.Stderr, "rtm server: warning:", w)
		}
	}
	if fromKernel {
		im, err := importKernel(srv, kernel.ImporterOptions{Table: table, PreferFamily: prefer, Logf: logger.Printf})
		if err != nil {
			srv.Abandon("server "+f.Name+" could not read its kernel", time.Second)
			fmt.Fprintln(os.Stderr, "rtm server: --from-kernel:", err)
			return 1
		}
		defer im.Close()
	}
	if fromFPM.on {
		fi, err := importFPM(srv, kernel.FPMOptions{Addr: fromFPM.addr, Table: table, AllowUIDs: allowWrite,
			Held: srv.Routes(), Current: srv.GetRoute, Logf: logger.Printf})
		if err != nil {
			srv.Abandon("server "+f.Name+" could not listen for zebra", time.Second)
			fmt.Fprintln(os.Stderr, "rtm server: --from-fpm:", err)
			return 1
		}
		defer fi.Close()
		listen := fi.Addr().String()
		srv.SetFPM(func() proto.FPMState {
			zebra, since, replaying, held := fi.Zebra()
			return proto.FPMState{Listen: listen, Zebra: zebra, Since: since, Replaying: replaying, Held: held}
		})
	}
	info, _ := srv.Info()
	if r := info.StoreState; strings.HasPrefix(r, "recovered") {
		fmt.Fprintf(os.Stderr, "rtm server: store %s was not closed cleanly: %s\n", info.Store, r)
	}
	// The banner goes to stderr whatever the input: a replay into a kept
	// store must say that the tables it starts from are not empty.
	banner := fmt.Sprintf("rtm server %s: socket %s, store %s (%s): %d routes, %d MACs",
		f.Name, f.Socket, info.Store, info.StoreState, info.Routes, info.MACs)
	// A full table is said at once: its first create would fail.
	var full []string
	for _, t := range []struct {
		what    string
		n, room int
	}{{"route", info.Routes, info.RouteCapacity}, {"MAC", info.MACs, info.MACCapacity}} {
		if t.room > 0 && t.n >= t.room {
			entries := "entries"
			if t.room == 1 {
				entries = "entry"
			}
			full = append(full, fmt.Sprintf("the %s table (%d %s)", t.what, t.room, entries))
		}
	}
	if len(full) > 0 {
		banner += "; full: " + strings.Join(full, " and ") + ": a create fails until a delete makes room"
	}
	if repl.AtTerminal() {
		banner += ". Type help."
	}
	fmt.Fprintln(os.Stderr, banner)
	// Serve after the banner: no client is welcomed before it is out.
	go srv.Serve()

	in := repl.NewInterp(srv.Origin("server"), os.Stdout, repl.Options{Mode: "server", Name: f.Name, KeepGoing: f.KeepGoing, Console: console})
	quit := repl.Signals(in, func(s os.Signal) {
		switch s {
		case syscall.SIGHUP:
			// SIGHUP is a checkpoint, not a quit: the server outlives the
			// terminal that started it.
			if err := srv.Checkpoint(); err != nil {
				logger.Printf("checkpoint: %v", err)
			} else {
				logger.Printf("checkpoint: store %s synced", info.Store)
			}
		case syscall.SIGUSR2:
			logger.Printf("SIGUSR2: %s", repl.CountersLine(srv.Stats()))
		}
	})
	end := repl.Session{In: in, Console: console, Scripts: f.Scripts, Input: repl.StdinInput(f.Framed), StayAtEOF: !exitAtEOF, Quit: quit}.Run()
	reason := "server " + f.Name + " quit"
	switch {
	case end.Signal != nil:
		reason = "server " + f.Name + " got " + end.Signal.String()
	case end.LineFailed:
		// Said, as a server that serves on at the end of its input may
		// surprise whoever drives it by quitting at a failed line.
		reason = "server " + f.Name + " quit: a line of its input failed"
		fmt.Fprintln(os.Stderr, "rtm server: quitting, as a line of its input failed (--keep-going goes on past failed lines)")
	case end.ReaderGone:
		// As a filter ends when its reader goes (rtm server | head -1):
		// the answers of the lines to come would go nowhere.
		reason = "server " + f.Name + " quit: the reader of its output went away"
		fmt.Fprintln(os.Stderr, "rtm server: quitting, as the reader of its output went away")
	}
	if end.StartFailed {
		switch srv.Abandon(reason, shutdownTimeout) {
		case "removed":
			fmt.Fprintf(os.Stderr, "rtm server: removed store %s, which this start created, as its --script failed (the same command starts afresh)\n", info.Store)
		case "kept":
			fmt.Fprintf(os.Stderr, "rtm server: kept store %s, which this start created, though its --script failed: clients changed it (the next start reopens it; --fresh empties it)\n", info.Store)
		}
		return end.Status
	}
	if err := srv.Close(reason, shutdownTimeout); err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 1
	}
	return end.Status
}

// shutdownTimeout bounds the goodbye to clients that do not read (a
// stopped one): with the session's own ending, rtm server ends within a
// second of SIGTERM whatever it is doing.
const shutdownTimeout = 400 * time.Millisecond

// importKernel makes the kernel of this process's network namespace a
// source of changes: the importer dumps the kernel's routes and
// neighbours into the tables, then follows them. Its changes go through
// the server's one path, counted as changes_from_kernel; its counters
// appear in show stats as kernel_*. It returns once the first dump is in.
func importKernel(srv *proto.Server, o kernel.ImporterOptions) (*kernel.Importer, error) {
	im, err := kernel.NewImporter(srv.Origin("kernel"), o)
	if err != nil {
		return nil, err
	}
	if err := startImport(srv, "kernel", im, o.Logf); err != nil {
		return nil, err
	}
	return im, nil
}

// importFPM makes FRR's zebra a source of changes: the importer listens
// for zebra's FPM connection (dplane_fpm_nl) and maps the routes zebra
// selects onto the tables by the kernel import's rules. Its changes are
// counted as changes_from_fpm, its counters appear as fpm_*. It returns
// once it listens.
func importFPM(srv *proto.Server, o kernel.FPMOptions) (*kernel.FPMImporter, error) {
	fi, err := kernel.NewFPMImporter(srv.Origin("fpm"), o)
	if err != nil {
		return nil, err
	}
	if err := startImport(srv, "fpm", fi, o.Logf); err != nil {
		return nil, err
	}
	return fi, nil
}

// importer is what importKernel and importFPM start.
type importer interface {
	Run(context.Context) error
	Ready() <-chan struct{}
	Stats() []kernel.Stat
	Close() error
}

// startImport runs im, its counters in show stats under name_, and waits
// until it is ready.
func startImport(srv *proto.Server, name string, im importer, logf func(string, ...any)) error {
	srv.AddStats(name+"_", func() []proto.Stat { return proto.StatsOf(im.Stats()) })
	errc := make(chan error, 1)
	go func() { errc <- im.Run(context.Background()) }()
	select {
	case <-im.Ready():
		go func() {
			if err := <-errc; err != nil {
				logf("%s import stopped: %v", name, err)
			}
		}()
		return nil
	case err := <-errc:
		im.Close()
		if err == nil {
			err = errors.New("stopped before it was ready")
		}
		return err
	}
}

// fpmFlag is --from-fpm [ADDR]: the address to listen on, which may be
// left out (see fpmAddrArg).
type fpmFlag struct {
	on   bool
	addr netip.AddrPort
}

func (f *fpmFlag) String() string {
	if f == nil || !f.addr.IsValid() {
		return ""
	}
	return f.addr.String()
}

func (f *fpmFlag) Set(v string) (err error) {
	f.on, f.addr = true, kernel.DefaultFPMAddr
	if v != "" {
		f.addr, err = kernel.ParseFPMAddr(v)
	}
	return err
}

// fpmAddrArg gives a --from-fpm without an address (the last argument,
// or one followed by a flag) the empty value, which means the default:
// the flag package has no optional values.
func fpmAddrArg(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "--from-fpm" || a == "-from-fpm") && (i+1 == len(args) || strings.HasPrefix(args[i+1], "-")) {
			a += "="
		}
		out = append(out, a)
	}
	return out
}

// ownFDs is about how many descriptors a server holds besides its
// clients': stdio, its store, lock and socket, the runtime's poller, the
// kernel's sockets.
const ownFDs = 16

// fdWarning says when the limit on open files is below --max-clients:
// clients past it are refused, to try again later, and logged. (A limit of
// 1024 with the default 1024 clients, short by the server's own few, is
// no news worth a line at every start.)
func fdWarning(maxClients int) string {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur >= uint64(maxClients) {
		return ""
	}
	return fmt.Sprintf("the limit on open files (ulimit -n) is %d: about %d clients can connect at once, not --max-clients %d; raise it (ulimit -n) or lower --max-clients",
		rl.Cur, max(int(rl.Cur)-ownFDs, 0), maxClients)
}
