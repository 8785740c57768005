// Package client is `rtm client`: the process that subscribes to a
// server. It keeps the client's session (proto.Client) with its
// subscribers (a watcher that prints every change, a kernel installer
// with --to-kernel), and runs commands from -c, --script, its prompt or
// stdin against the client's copy of the tables, sending its changes to
// the server (repl.Session).
package client

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"rtm/proto"
	"rtm/proto/kernel"
	"rtm/repl"

	"golang.org/x/sys/unix"
)

// logCloseTimeout bounds the wait, as the client ends, for its log's last
// lines to be taken by a stderr that may be read slowly or not at all.
const logCloseTimeout = time.Second

// watchCloseGrace is how long a watching client's end waits for a write
// of its output before it asks whether the write waits on a reader that
// does not read (closeWatching).
const watchCloseGrace = 500 * time.Millisecond

// logWait is how long a line of the client's log waits to be written: it
// goes out before what the session writes after it (the goodbye before
// the line not applied), unless stderr is stuck.
const logWait = 100 * time.Millisecond

// Main runs `rtm client` with args (the flags after the mode) and
// returns the exit status.
func Main(args []string) int {
	repl.QuitOnSIGQUIT() // from the start: Ctrl-\ while it starts, or waits for a server
	repl.HoldSignals(false)
	var (
		f        repl.InstanceFlags
		client   string
		watch    bool
		watchOpt repl.WatchOptions
		wait     time.Duration
		commands []string
		toKernel bool
		table    uint32
		protocol int
		metric   uint
		servers  []uint32
	)
	fs := repl.NewFlagSet("client", "[flags]", repl.ClientAbout)
	f.Register(fs)
	fs.StringVar(&client, "client-name", "", "`name` the server shows for this client: up to 64 bytes of characters that print as themselves (default: client-PID)")
	fs.BoolVar(&watch, "watch", false, "print every change as it arrives, as a command that replays it (C,…, U,…, D,…, flush), with its sequence number in a comment")
	fs.BoolVar(&watchOpt.Times, "ts", false, "with --watch: the time each change arrived, in the comment (like ip monitor -ts)")
	fs.BoolVar(&watchOpt.JSON, "json", false, "with --watch: one JSON object per change instead")
	fs.BoolVar(&watchOpt.Full, "full", false, "with --watch: print the first snapshot whole, as the C lines that rebuild it, then every change (a mirror: rtm client --watch --full | rtm server --fresh)")
	repl.DurationFlag(fs, &wait, "wait", 0, "keep trying to reach the server for up to this `duration` (5s, 500ms; plain seconds too): one not started yet, or one that is full or does not welcome the client; and wait as long for it to come back while piped changes are sent (changes sent wait up to a minute for their answer)")
	repl.ListFlag(fs, &servers, "server-uid", "also trust a server running as this `uid` (repeatable; default: only your own uid and root)", repl.ParseUID)
	repl.ListFlag(fs, &commands, "c", "run `COMMAND` and exit, instead of reading stdin (repeatable, in order; like vtysh -c)", func(v string) (string, error) { return v, nil })
	fs.BoolVar(&toKernel, "to-kernel", false, "install the tables into the kernel of this network namespace: routes, and each MAC as a permanent neighbour on the device of its route; rtm's entries carry --kernel-proto, others are never touched; needs root (CAP_NET_ADMIN)")
	fs.Func("kernel-table", "with --to-kernel: the routing `table` to install into, main or a number but 255 (default main)", func(v string) (err error) {
		if table, err = kernel.ParseTable(v); err == nil && table == unix.RT_TABLE_LOCAL {
			// Looked up before main for every packet, and the host's own
			// addresses live there: a route of rtm's would override them.
			err = errors.New("255 is the kernel's local table, looked up before main, where the host's own addresses live: install into main or a table of your own")
		}
		return err
	})
	fs.IntVar(&protocol, "kernel-proto", kernel.DefaultProtocol, "with --to-kernel: the routing protocol `number` that marks rtm's routes and neighbours (ip route show proto N): rtm deletes the entries of that number its tables lack, so the kernel's and the routing daemons' numbers are refused")
	fs.UintVar(&metric, "kernel-metric", 0, "with --to-kernel: the `metric` of rtm's routes (0: the kernel's default); another owner's route for the same prefix at another metric stays beside rtm's, and the lower metric forwards")
	if rc := repl.ParseFlags(fs, args); rc >= 0 {
		return rc
	}
	if !repl.FlagGiven(fs, "client-name") { // --client-name '' is refused below
		client = "client-" + strconv.Itoa(os.Getpid())
	}
	err := f.Resolve()
	if err == nil {
		if err = proto.CheckClientName(client); err != nil {
			err = fmt.Errorf("--client-name: %w", err)
		}
	}
	if err == nil && len(commands) > 0 && (watch || f.Framed || toKernel) {
		err = errors.New("-c runs its commands and exits: it goes with none of --watch, --framed and --to-kernel")
	}
	if err == nil && !watch && (watchOpt.Times || watchOpt.JSON || watchOpt.Full) {
		err = errors.New("--ts, --json and --full say how --watch prints: give --watch too")
	}
	if err == nil {
		err = repl.CheckTuning(fs, toKernel, "--to-kernel", "kernel-table", "kernel-proto", "kernel-metric")
	}
	if err == nil && toKernel {
		if perr := kernel.CheckProtocol(protocol); perr != nil {
			err = fmt.Errorf("--kernel-proto %d: %w", protocol, perr)
		}
	}
	if err == nil && metric > math.MaxUint32 {
		// The kernel's metric is 32 bits: a larger one would wrap round.
		err = fmt.Errorf("--kernel-metric %d: want 0 to %d", metric, uint32(math.MaxUint32))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm client:", err)
		return 2
	}
	console := repl.ProcessConsole()
	// The session's own log (lost server, goodbye, installs) goes through
	// a queue: a stderr nobody reads cannot hold up the session's end.
	logger := repl.NewWaitingLogger(console, logWait)
	defer logger.Close(logCloseTimeout)
	opts := proto.ClientOptions{Socket: f.Socket, Name: client, Logf: logger.Printf, Wait: wait, ServerUIDs: servers}
	// Watched changes are the output of --watch: stdout (through the
	// prompt at a terminal), so `rtm client --watch | head -1` gets them,
	// and a reader that went away (EPIPE) ends the watch.
	var watcher *repl.Watcher
	if watch {
		var out io.Writer = os.Stdout
		if repl.AtTerminal() {
			out = console
		}
		watcher = repl.NewWatcher(out, watchOpt)
		opts.Subscribers = append(opts.Subscribers, watcher)
	}
	var installer *kernel.Installer
	if toKernel {
		routesOnly, err := installLoop(f.Socket, servers, table)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rtm client: --to-kernel:", err)
			return 1
		}
		if routesOnly != "" {
			fmt.Fprintln(os.Stderr, "rtm client: --to-kernel:", routesOnly)
		}
		installer, err = kernel.NewInstaller(kernel.InstallerOptions{Table: table, Protocol: uint8(protocol), Metric: uint32(metric), RoutesOnly: routesOnly != "", Logf: logger.Printf})
		if err != nil {
			fmt.Fprintln(os.Stderr, "rtm client: --to-kernel:", err)
			return 1
		}
		defer installer.Close()
		opts.Subscribers = append(opts.Subscribers, installer)
	}
	c, err := proto.Dial(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm client:", err)
		switch {
		case errors.Is(err, proto.ErrRefused), errors.Is(err, os.ErrPermission), errors.Is(err, proto.ErrNoStore):
			// It was refused, its socket keeps this uid out, or its
			// store is gone: the server runs.
		case errors.Is(err, proto.ErrBusy) && wait == 0:
			fmt.Fprintln(os.Stderr, "(--wait DURATION tries again for that long)")
		case errors.Is(err, proto.ErrBusy):
			fmt.Fprintf(os.Stderr, "(waited --wait %v for it)\n", wait)
		case !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist):
			// Not about whether a server is there (the client's own
			// limits, its memory): no hint.
		case f.Label == f.Socket || f.Socket != proto.DefaultSocket(f.Name):
			// The socket was given: the name does not say where to look.
			fmt.Fprintf(os.Stderr, "(%sis a server listening on %s?)\n", waited(wait), f.Socket)
		default:
			if pid := proto.LiveServer(f.Name); pid > 0 {
				// This uid's server runs the instance, but not on the
				// socket the name gives here.
				switch at, listening := proto.Listener(pid); {
				case !listening:
					// Started again after a crash, it repairs its store
					// before it listens; the dead one's socket is still
					// there until then.
					again := "try again in a moment, or with --wait DURATION"
					if wait > 0 {
						again = "a longer --wait waits for it"
					}
					fmt.Fprintf(os.Stderr, "(%srtm server --name %s runs, but %s; %s)\n", waited(wait), f.Name, proto.NotListeningIssue(pid), again)
				case at != "":
					fmt.Fprintf(os.Stderr, "(%srtm server --name %s runs, pid %d, and listens on %s, not on %s: its XDG_RUNTIME_DIR is not yours, or it was given --socket; --socket %s reaches it)\n", waited(wait), f.Name, pid, at, f.Socket, at)
				default:
					fmt.Fprintf(os.Stderr, "(%srtm server --name %s runs, pid %d, but its socket was removed: a restart of the server makes it again)\n", waited(wait), f.Name, pid)
				}
				break
			}
			// No server: the instance, as rtm ls lists this uid's, may
			// have been stopped, or crashed, rather than never started.
			switch in := listed(f.Name); {
			case in != nil && in.State == proto.StateStopped:
				fmt.Fprintf(os.Stderr, "(%sinstance %s is stopped, its store kept: `%s` starts it)\n", waited(wait), f.Name, serveAgain(in))
			case in != nil && in.State == proto.StateCrashed:
				fmt.Fprintf(os.Stderr, "(%sinstance %s crashed (pid %d): `%s` repairs its store and starts it)\n", waited(wait), f.Name, in.Store.WriterPID, serveAgain(in))
			default:
				// The name finds this uid's own server only: another
				// user's is reached by its socket.
				fmt.Fprintf(os.Stderr, "(%sis `rtm server --name %s` running, as this user? another user's server: --socket PATH)\n", waited(wait), f.Name)
			}
		}
		return 1
	}
	// A command that still runs as the process ends (end.Busy) reads the
	// store's mapping: unmapping it under that command would crash it.
	keepMapped := false
	defer func() {
		if !keepMapped {
			c.Close()
		}
	}()
	if installer != nil {
		c.AddStats("kernel_", func() []proto.Stat { return proto.StatsOf(installer.Stats()) })
	}
	src := repl.StdinInput(f.Framed)
	if watch && !f.Framed && repl.PagedOutput() {
		// rtm client --watch | less: the keys typed are the pager's, and
		// none is a command (they were both, taken by whichever read
		// first). Ctrl-C ends the watch, as the pager's q does.
		src = repl.Input{Name: "<stdin>", R: strings.NewReader("")}
	}
	if len(commands) > 0 {
		// -c: the commands are the input, a stream of their own
		// ("-c:2: ..." names the second); stdin is not read.
		src = repl.Input{Name: "-c", R: strings.NewReader(strings.Join(commands, "\n") + "\n")}
	}
	// A batch (piped lines, -c, --framed) whose server quits says which of
	// its lines it lost; a watch ends with its server, as the prompt does.
	batch := !watch && !toKernel && (src.R != nil || src.Framed)
	// A watcher ends on SIGTERM or SIGINT while its first snapshot is
	// being written too (--full into a pipe its reader does not drain
	// yet), as it does after: the session's own handling of signals
	// comes only once the snapshot is in. (Both get a signal once it
	// does.)
	var early chan os.Signal
	if watcher != nil {
		early = make(chan os.Signal, 1)
		signal.Notify(early, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(early)
	}
	select {
	case <-early:
		keepMapped = true // closed here, or left to the process's exit
		if closeWatching(c, watcher, logger.Printf) {
			return 1
		}
		return 0
	case <-c.Ready():
	case <-c.Done():
		if err := c.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "rtm client:", err)
			return 1
		}
		if watcher != nil {
			// Its server quit before the snapshot: the output mirrors
			// nothing, which an exit 0 would hide from a pipeline.
			logger.Printf("rtm client: --watch: ended before its first snapshot came (%v): nothing was written", c.Quit())
			return 1
		}
		if quit := c.Quit(); quit != nil && batch {
			// It quit before the snapshot: nothing was read, let alone
			// applied.
			first := src.Label()
			if len(f.Scripts) > 0 {
				first = f.Scripts[0]
			}
			fmt.Fprintf(os.Stderr, "%s:1: not applied, nor any line after it: %v\n", first, quit)
			return 1
		}
		return 0
	}
	in := repl.NewInterp(c, os.Stdout, repl.Options{Mode: "client", Name: f.Label, KeepGoing: f.KeepGoing, Console: console, Wait: wait})
	quit := repl.Signals(in, func(s os.Signal) {
		switch s {
		case syscall.SIGUSR1:
			logger.Printf("SIGUSR1: dropping local tables, asking for a fresh snapshot")
			c.Resync()
		case syscall.SIGUSR2:
			logger.Printf("SIGUSR2: %s", repl.CountersLine(c.Stats()))
		}
	})
	// Piped commands run against the snapshot, then the client exits; a
	// watching client stays until the server quits or its reader goes.
	var outputGone <-chan struct{}
	if watcher != nil {
		outputGone = watcher.Gone()
		if !repl.AtTerminal() {
			closed, gone := repl.OutputClosed(int(os.Stdout.Fd())), watcher.Gone()
			either := make(chan struct{})
			go func() {
				select {
				case <-closed:
				case <-gone:
				}
				close(either)
			}()
			outputGone = either
		}
	}
	ended := c.Done()
	if watcher != nil {
		ended = watchEnded(c, watcher, logger.Printf)
	}
	session := repl.Session{In: in, Console: console, Scripts: f.Scripts, Input: src, StayAtEOF: watch || toKernel, Quit: quit, Ended: ended, OutputGone: outputGone, ReaderMayGo: true}
	if batch {
		// It ends with its server, as a watch does, and says which of its
		// lines it did not run: whatever was still to come.
		session.Abandoned = c.Quit
	}
	end := session.Run()
	keepMapped = end.Busy
	status := end.Status
	if watcher != nil && !end.Busy {
		keepMapped = true // closed here, or left to the process's exit
		// A session that ended in an error (below) says so, whatever
		// the watch says of itself.
		if closeWatching(c, watcher, logger.Printf) {
			status = 1
		} else if seq, err := watcher.Failed(); err != nil && !errors.Is(err, syscall.EPIPE) {
			// A reader that went away had what it wanted; a full disk
			// did not. (Through the log, which waits a bounded time.)
			logger.Printf("rtm client: --watch: write output: %v: the changes from seq %d on were not all written", err, seq)
			status = 1
		}
	}
	select {
	case <-c.Done():
		if err := c.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "rtm client:", err)
			return 1
		}
	default:
	}
	return status
}

// closeWatching ends a watching client's session. Close waits for the
// receive loop, which waits in the watcher's write while the reader of
// the output does not read (rtm client --watch | less, paused): a
// signal would then never end the process. If the session has not
// ended within watchCloseGrace and the watcher still waits, the process
// ends without it, the write with it: stuck, which it says through logf
// (the bounded log: stderr may be the pipe nobody reads, 2>&1 | less),
// with the change from which the output may be short.
//
// The first snapshot of a large table takes a while to make (two
// million MACs: its sort, its addresses read) before its first line is
// written, and longer to print: a watcher signalled meanwhile ends after
// watchCloseGrace all the same, writing nothing more, and says so. One
// whose session ended before its first snapshot came (a signal, its
// server gone) says that nothing was written. Both are failures: the
// output is no mirror of the tables.
func closeWatching(c *proto.Client, w *repl.Watcher, logf func(string, ...any)) (failed bool) {
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	for {
		select {
		case <-closed:
			if stopped, _ := w.Stop(); stopped {
				logf("rtm client: --watch: ended before its first snapshot came: nothing was written")
				return true
			}
			return false
		case <-time.After(watchCloseGrace):
			// Past its first snapshot, Stop stops nothing: the watch is
			// over only once its receive loop is, or its write stuck.
			stopped, begun := w.Stop()
			if seq, stuck := w.Stuck(); stuck {
				logf("rtm client: --watch: ended while its output was %s: the changes from seq %d on may not have been written", outputWait(), seq)
				return true
			}
			switch {
			case stopped && begun:
				logf("rtm client: --watch: ended while it printed its first snapshot: the output holds only its first lines, if any")
				return true
			case stopped:
				logf("rtm client: --watch: ended while its first snapshot came: nothing was written")
				return true
			}
		}
	}
}

// listed is this uid's instance name as rtm ls lists it, if it has a
// store; nil if none, or if the list cannot be read.
func listed(name string) *proto.Instance {
	list, err := proto.Instances()
	if err != nil {
		return nil
	}
	for i := range list {
		if list[i].Name == name && list[i].Store != nil {
			return &list[i]
		}
	}
	return nil
}

// serveAgain is the command that serves instance in again: with its
// store, if that is kept elsewhere (--store).
func serveAgain(in *proto.Instance) string {
	if in.Store.Path != proto.DefaultStore(in.Name) {
		return "rtm server --name " + in.Name + " --store " + in.Store.Path
	}
	return "rtm server --name " + in.Name
}

// outputWait says what a write to stdout that has not returned waits
// for: a reader, for a pipe, a socket or a terminal; for a file (a large
// --full snapshot), only its own writing.
func outputWait() string {
	var st unix.Stat_t
	if unix.Fstat(int(os.Stdout.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		return "still being written"
	}
	return "not being read"
}

// watchEnded closes when the watching client's session ends, or when its
// server has closed the connection (a quit, or a crash) while a write of
// the watcher's has not returned for watchStuckFor: the receive loop, in
// that write to an output nobody reads, would never read as far as the
// goodbye, and the process would outlive its server for as long as its
// reader does. The end then goes as after SIGTERM (closeWatching). A
// restarted server does not keep it: after a goodbye a watch ends all
// the same, and a reader paused that long is not following the changes.
func watchEnded(c *proto.Client, w *repl.Watcher, logf func(string, ...any)) <-chan struct{} {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(watchStuckFor / 2)
		defer tick.Stop()
		since, at := time.Now(), ^uint64(0)
		for {
			select {
			case <-c.Done():
				return
			case now := <-tick.C:
				seq, stuck := w.Stuck()
				switch {
				case !stuck || seq != at:
					since, at = now, seq
				case now.Sub(since) >= watchStuckFor && c.PeerGone():
					logf("rtm client: --watch: its server went away while its output was not being read")
					return
				}
			}
		}
	}()
	return ended
}

// watchStuckFor is how long a watcher's write may hold up the end of a
// session whose server went away. A write is a run of at most 4 KiB of
// whole lines: a reader that takes less than that in this time (800
// bytes a second), one that reads line by line included, is not reading.
const watchStuckFor = 5 * time.Second

// installLoop refuses to install into the kernel table that the
// server's routes come from in this network namespace (--from-kernel, or
// --from-fpm from a zebra here, which takes the kernel's routes of its
// table as its own): every route installed would come back to the server
// as the kernel's, and outlive its withdrawal. Into another table, beside
// a --from-kernel server, routes go but neighbours do not, which have no
// table: routesOnly says so. A server busy with questions is asked again
// for a while; one that does not answer yet is not: the check is made at
// start only.
func installLoop(socket string, trusted []uint32, table uint32) (routesOnly string, err error) {
	const askBusyFor = 5 * time.Second
	var info proto.ServerInfo
	err = proto.Ask(socket, trusted, proto.QueryInfo, &info)
	for end := time.Now().Add(askBusyFor); errors.Is(err, proto.ErrBusy) && time.Now().Before(end); {
		// Every place for questions taken: one is given back as soon as
		// its question is answered.
		time.Sleep(50 * time.Millisecond)
		err = proto.Ask(socket, trusted, proto.QueryInfo, &info)
	}
	if err != nil || info.KernelImport == nil {
		return "", nil
	}
	k := info.KernelImport
	if ns, err := kernel.NetNS(); err != nil || ns != k.NetNS {
		return "", nil
	}
	switch {
	case kernel.TableID(table) == k.Table && k.Source == "fpm":
		return "", fmt.Errorf("server %s takes table %d of this network namespace from its zebra (--from-fpm), the table rtm would install into: zebra would take the routes as the kernel's and send them back, so that none is ever withdrawn; install in another namespace, or into another table (--kernel-table)", info.Name, k.Table)
	case kernel.TableID(table) == k.Table:
		return "", fmt.Errorf("server %s imports table %d of this network namespace (--from-kernel), the table rtm would install into: the routes would come back to it as the kernel's; install in another namespace, or into another table (--kernel-table, which takes routes only)", info.Name, k.Table)
	case k.Source != "fpm":
		return fmt.Sprintf("routes only: server %s imports this network namespace's neighbours (--from-kernel), and a neighbour installed here would come back to it as the kernel's", info.Name), nil
	}
	return "", nil
}

// waited begins a hint with how long the client waited for its server,
// if it did (--wait).
func waited(wait time.Duration) string {
	if wait <= 0 {
		return ""
	}
	return fmt.Sprintf("waited --wait %v for it: ", wait)
}
