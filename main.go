// Command rtm is a routing table manager: one server owns an L3 routing
// table and an ARP-style MAC table in shared memory, and any number of
// clients subscribe to them over a SOCK_SEQPACKET socket.
//
// This file is the wiring only: modes, flags, defaults and signals. The
// work is done in store/ (the state), proto/ (the wire) and repl/ (the
// command language).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chzyer/readline"

	"rtm/proto"
	"rtm/proto/kernel"
	"rtm/repl"
	"rtm/repl/bench"
	"rtm/repl/scenario"
	"rtm/store"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `rtm: a routing table manager with shared-memory MAC table

Usage:
  rtm server  [flags]        own the tables: commands from the prompt, stdin, --script, clients, --from-kernel
  rtm client  [flags]        subscribe to a server: read, send changes (-c), --watch, --to-kernel
  rtm test    [flags] FILE…  run scenario files against real server and client processes
  rtm bench   [flags]        measure B1–B9, W1, K1, K2 against this machine's own limits
  rtm ls      [--json]       list this user's instances: live, stopped, crashed, stale
  rtm rm      NAME…          remove stopped instances (their store and stale socket)
  rtm version                print version information

Every mode takes -h for its flags. Type "help" at the prompt for the command language.
An instance is named with --name (default %q): it picks the socket
(%s) and the store (/dev/shm/rtm.NAME).
`

func main() {
	// A closed stdout (rtm client | head) must not kill rtm with SIGPIPE;
	// writes report EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, usage, defaultName, proto.DefaultSocket("NAME"))
		return 2
	}
	switch args[0] {
	case "server":
		return serverMode(args[1:])
	case "client":
		return clientMode(args[1:])
	case "test":
		return testMode(args[1:])
	case "bench":
		return benchMode(args[1:])
	case "ls":
		return lsMode(args[1:])
	case "rm":
		return rmMode(args[1:])
	case "version", "--version", "-version":
		fmt.Printf("rtm %s (protocol %d, store layout %d, %s %s/%s)\n",
			version, proto.Version, store.LayoutVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Printf(usage, defaultName, proto.DefaultSocket("NAME"))
		return 0
	}
	fmt.Fprintf(os.Stderr, "rtm: unknown mode %q\n\n", args[0])
	fmt.Fprintf(os.Stderr, usage, defaultName, proto.DefaultSocket("NAME"))
	return 2
}

const defaultName = "default"

// instanceFlags are shared by server and client.
type instanceFlags struct {
	name, socket string
	label        string // names the instance in prompts and hints
	scripts      []string
	keepGoing    bool
	framed       bool
}

func (f *instanceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", defaultName, "instance `name`: picks the default socket and store")
	fs.StringVar(&f.socket, "socket", "", "socket `path` (default: "+proto.DefaultSocket("NAME")+")")
	listFlag(fs, &f.scripts, "script", "replay `FILE` before reading stdin or the prompt (repeatable)", parseString)
	fs.BoolVar(&f.keepGoing, "keep-going", false, "report every failing line of a replay instead of stopping at the first; the exit status is 1 all the same")
	fs.BoolVar(&f.framed, "framed", false, "the machine interface: after each command's output, one line \\x00ok or \\x00err<TAB>message (README: \"Driving rtm from a program\")")
}

// resolve checks the flags that name files and fills in the defaults.
// Nothing is created before it has passed.
func (f *instanceFlags) resolve() error {
	if err := proto.CheckInstanceName(f.name); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	// A socket given without a name is the only name the instance has
	// here: the prompt shows it rather than a "default" that isn't.
	f.label = f.name
	if f.socket == "" {
		f.socket = proto.DefaultSocket(f.name)
	} else if f.name == defaultName {
		f.label = f.socket
	}
	for _, s := range f.scripts {
		fi, err := os.Stat(s)
		switch {
		case err != nil:
			return fmt.Errorf("--script: %w", err)
		case fi.IsDir():
			return fmt.Errorf("--script %s: is a directory; want a script file", s)
		}
	}
	return nil
}

// checkKernelFlags refuses the kernel flags without the flag they tune.
func checkKernelFlags(fs *flag.FlagSet, on bool, what string, tuning ...string) error {
	for _, n := range tuning {
		if !on && flagSet(fs, n) {
			return fmt.Errorf("--%s tunes %s: give %s too", n, what, what)
		}
	}
	return nil
}

// listFlag adds a repeatable flag whose values parse appends to list.
func listFlag[T any](fs *flag.FlagSet, list *[]T, name, usage string, parse func(string) (T, error)) {
	fs.Func(name, usage, func(v string) error {
		x, err := parse(v)
		*list = append(*list, x)
		return err
	})
}

func parseString(v string) (string, error) { return v, nil }

func parseUID(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("want a numeric uid, got %q", v)
	}
	return uint32(n), nil
}

// tableFlag adds the flag that names a routing table, main or a number.
func tableFlag(fs *flag.FlagSet, t *uint32, usage string) {
	fs.Func("kernel-table", usage, func(v string) (err error) {
		*t, err = kernel.ParseTable(v)
		return err
	})
}

func newFlagSet(mode, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("rtm "+mode, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rtm %s %s\n\n%s\nFlags:\n", mode, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags returns -1 to continue, else the exit status. rtm takes no
// arguments but flags: a stray word is a usage error, caught before
// anything is created.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q: this mode takes flags only (files to replay go after --script); see %s -h\n", fs.Name(), fs.Arg(0), fs.Name())
		return 2
	}
	return -1
}

// flagSet reports whether the command line gave the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func serverMode(args []string) int {
	var (
		f             instanceFlags
		storePath     string
		capacity      int
		routeCapacity int
		group         bool
		allow         []uint32
		allowWrite    []uint32
		exitAtEOF     bool
		fresh, unlink bool
		fromKernel    bool
		table         uint32
		prefer        int
	)
	fs := newFlagSet("server", "[flags]", repl.ServerAbout)
	f.register(fs)
	fs.StringVar(&storePath, "store", "", "store `path` (default: /dev/shm/rtm.NAME; a regular file survives reboots)")
	fs.IntVar(&capacity, "capacity", store.DefaultCapacity, "MAC table `entries` when the store is created (an existing store keeps its own; with --fresh it is created anew)")
	fs.IntVar(&routeCapacity, "route-capacity", store.DefaultRouteCapacity, "route table `entries` when the store is created (as --capacity)")
	fs.BoolVar(&group, "group", false, "let the owner's group connect (socket and store mode 0660)")
	listFlag(fs, &allow, "allow-uid", "also accept clients of this `uid`, to read (repeatable)", parseUID)
	listFlag(fs, &allowWrite, "allow-write-uid", "also accept clients of this `uid`, to read and change the tables (repeatable; the server's own uid and root always may)", parseUID)
	fs.BoolVar(&exitAtEOF, "exit-at-eof", false, "quit when piped stdin ends (default: keep serving until quit, SIGINT or SIGTERM)")
	fs.BoolVar(&fresh, "fresh", false, "start with empty tables even if the store holds some")
	fs.BoolVar(&unlink, "unlink", false, "remove the store on a clean quit (default: keep it for the next start)")
	fs.BoolVar(&fromKernel, "from-kernel", false, "mirror the kernel of this network namespace: dump its routes and neighbours, then follow them (implies --fresh; typed changes still work)")
	tableFlag(fs, &table, "with --from-kernel: the routing `table` to follow, main or a number (default main)")
	prefer = 4
	fs.Func("kernel-prefer", "with --from-kernel: the address `family` (4 or 6) whose neighbour wins when several IPs share one MAC (default 4)", func(v string) error {
		if v != "4" && v != "6" {
			return fmt.Errorf("want 4 or 6, got %q", v)
		}
		prefer = int(v[0] - '0')
		return nil
	})
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if err := f.resolve(); err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 2
	}
	if err := checkKernelFlags(fs, fromKernel, "--from-kernel", "kernel-table", "kernel-prefer"); err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 2
	}
	// The kernel is the source: a kept store would hold entries it no
	// longer has, which the import would never delete.
	fresh = fresh || fromKernel
	if storePath == "" {
		storePath = proto.DefaultStore(f.name)
	}
	// Capacities size a store when it is created; given explicitly, they
	// must match an existing store's (or --fresh recreates it).
	opts := store.Options{Path: storePath}
	if flagSet(fs, "capacity") {
		opts.Capacity = capacity
	}
	if flagSet(fs, "route-capacity") {
		opts.RouteCapacity = routeCapacity
	}
	console := newConsole()
	srv, err := repl.StartServer(proto.ServerOptions{
		Name: f.name, Version: version, Socket: f.socket, Store: opts, Fresh: fresh, Unlink: unlink,
		GroupAccess: group, AllowUIDs: allow, AllowWriteUIDs: allowWrite, Logf: console.Printf,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 1
	}
	if fromKernel {
		im, err := srv.ImportKernel(context.Background(), kernel.ImporterOptions{Table: table, PreferFamily: prefer, Logf: console.Printf})
		if err != nil {
			srv.Abandon("server "+f.name+" could not read its kernel", time.Second)
			fmt.Fprintln(os.Stderr, "rtm server: --from-kernel:", err)
			return 1
		}
		defer im.Close()
	}
	info, _ := srv.Info()
	if r := info.StoreState; strings.HasPrefix(r, "recovered") {
		fmt.Fprintf(os.Stderr, "rtm server: store %s was not closed cleanly: %s\n", info.Store, r)
	}
	// The banner goes to stderr whatever the input: a replay into a kept
	// store must say that the tables it starts from are not empty.
	banner := fmt.Sprintf("rtm server %s: socket %s, store %s (%s): %d routes, %d MACs",
		f.name, f.socket, info.Store, info.StoreState, info.Routes, info.MACs)
	if interactive() {
		banner += ". Type help."
	}
	fmt.Fprintln(os.Stderr, banner)
	// Serve after the banner: no client is welcomed before it is out.
	go srv.Serve()

	in := repl.NewInterp(srv.Origin("server"), os.Stdout, repl.Options{Mode: "server", Name: f.name, KeepGoing: f.keepGoing, Console: console})
	quit := sigs(in, func(s os.Signal) {
		if s == syscall.SIGHUP {
			// SIGHUP is a checkpoint, not a quit: the server outlives the
			// terminal that started it.
			if err := srv.Checkpoint(); err != nil {
				console.Printf("checkpoint: %v", err)
			} else {
				console.Printf("checkpoint: store %s synced", info.Store)
			}
		}
	})
	end := repl.Session{In: in, Console: console, Scripts: f.scripts, Input: stdinInput(&f), StayAtEOF: !exitAtEOF, Quit: quit}.Run()
	reason := "server " + f.name + " quit"
	if end.Signal != nil {
		reason = "server " + f.name + " got " + end.Signal.String()
	}
	if end.StartFailed {
		srv.Abandon(reason, 2*time.Second)
		return end.Status
	}
	if err := srv.Close(reason, 2*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 1
	}
	return end.Status
}

// The server's own lines change the tables; a client asks the server.
var (
	_ repl.Changer = (*proto.Origin)(nil)
	_ repl.Remote  = (*proto.Client)(nil)
)

// interactive says whether rtm talks to a person at a terminal.
func interactive() bool {
	return readline.IsTerminal(int(os.Stdin.Fd())) && readline.IsTerminal(int(os.Stdout.Fd()))
}

// newConsole carries asynchronous notices (clients connecting, changes
// watched): through the prompt at a terminal, else to stderr so that
// stdout holds only command results.
func newConsole() *repl.Console {
	if interactive() {
		return repl.NewConsole(os.Stdout)
	}
	return repl.NewConsole(os.Stderr)
}

// sigs returns a channel that receives the signal that ends the process:
// SIGTERM, or SIGINT when no one is at the prompt. At the prompt, SIGINT
// is Ctrl-C while a command runs: it interrupts that command, as in a
// shell. Other signals (SIGHUP, SIGUSR1) go to onOther.
func sigs(in *repl.Interp, onOther func(os.Signal)) <-chan os.Signal {
	ch := make(chan os.Signal, 4)
	quit := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	atPrompt := interactive()
	go func() {
		for s := range ch {
			switch {
			case s == syscall.SIGINT && atPrompt:
				in.Interrupt()
			case s == syscall.SIGINT || s == syscall.SIGTERM:
				quit <- s
				return
			default:
				onOther(s)
			}
		}
	}()
	return quit
}

// stdinInput reads stdin: framed, at the prompt (a terminal), or plain.
func stdinInput(f *instanceFlags) repl.Input {
	switch {
	case f.framed:
		return repl.Input{Framed: true}
	case interactive():
		return repl.Input{}
	}
	return repl.Input{Name: "<stdin>", R: os.Stdin}
}

func clientMode(args []string) int {
	var (
		f        instanceFlags
		client   string
		watch    bool
		watchOpt repl.WatchOptions
		wait     time.Duration
		commands []string
		toKernel bool
		table    uint32
		protocol int
		metric   uint
	)
	fs := newFlagSet("client", "[flags]", repl.ClientAbout)
	f.register(fs)
	fs.StringVar(&client, "client-name", "", "`name` the server shows for this client: 1 to 64 printable characters (default: client-PID)")
	fs.BoolVar(&watch, "watch", false, "print every change as it arrives, as a command that replays it (C,…, U,…, D,…, flush), with its sequence number in a comment")
	fs.BoolVar(&watchOpt.Times, "ts", false, "with --watch: the time each change arrived, in the comment (like ip monitor -ts)")
	fs.BoolVar(&watchOpt.JSON, "json", false, "with --watch: one JSON object per change instead")
	fs.DurationVar(&wait, "wait", 0, "keep trying to reach the server for up to this `duration`")
	listFlag(fs, &commands, "c", "run `COMMAND` and exit, instead of reading stdin (repeatable, in order; like vtysh -c)", parseString)
	fs.BoolVar(&toKernel, "to-kernel", false, "install the tables into the kernel of this network namespace: routes, and each MAC as a permanent neighbour on the device of its route; rtm's entries carry --kernel-proto, others are never touched")
	tableFlag(fs, &table, "with --to-kernel: the routing `table` to install into, main or a number (default main)")
	fs.IntVar(&protocol, "kernel-proto", kernel.DefaultProtocol, "with --to-kernel: the routing protocol `number` that marks rtm's routes and neighbours (ip route show proto N)")
	fs.UintVar(&metric, "kernel-metric", 0, "with --to-kernel: the `metric` of rtm's routes (0: the kernel's default)")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if client == "" {
		client = "client-" + strconv.Itoa(os.Getpid())
	}
	err := f.resolve()
	if err == nil {
		if err = proto.CheckClientName(client); err != nil {
			err = fmt.Errorf("--client-name: %w", err)
		}
	}
	if err == nil && len(commands) > 0 && (watch || f.framed) {
		err = errors.New("-c runs its commands and exits: it goes with neither --watch nor --framed")
	}
	if err == nil && !watch && (watchOpt.Times || watchOpt.JSON) {
		err = errors.New("--ts and --json say how --watch prints: give --watch too")
	}
	if err == nil {
		err = checkKernelFlags(fs, toKernel, "--to-kernel", "kernel-table", "kernel-proto", "kernel-metric")
	}
	if err == nil && (protocol < 1 || protocol > 255) {
		err = fmt.Errorf("--kernel-proto %d: want 1 to 255 (rtm's default is %d)", protocol, kernel.DefaultProtocol)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm client:", err)
		return 2
	}
	console := newConsole()
	opts := proto.ClientOptions{Socket: f.socket, Name: client, Logf: console.Printf}
	// Watched changes are the output of --watch: stdout (through the
	// prompt at a terminal), so `rtm client --watch | head -1` gets them,
	// and a reader that went away (EPIPE) ends the watch.
	var watcher *repl.Watcher
	if watch {
		var out io.Writer = os.Stdout
		if interactive() {
			out = console
		}
		watcher = repl.NewWatcher(out, watchOpt)
		opts.Watch = watcher.Handle
	}
	if toKernel {
		inst, err := kernel.NewInstaller(kernel.InstallerOptions{Table: table, Protocol: uint8(protocol), Metric: uint32(metric), Logf: console.Printf})
		if err != nil {
			fmt.Fprintln(os.Stderr, "rtm client: --to-kernel:", err)
			return 1
		}
		defer inst.Close()
		opts.Install = inst
	}
	opts.Wait = wait
	c, err := proto.Dial(opts)
	if err == nil && watcher != nil {
		watcher.Attach(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm client:", err)
		switch {
		case errors.Is(err, proto.ErrRefused):
		case f.label == f.socket:
			fmt.Fprintf(os.Stderr, "(is a server listening on %s?)\n", f.socket)
		default:
			fmt.Fprintf(os.Stderr, "(is `rtm server --name %s` running?)\n", f.name)
		}
		return 1
	}
	defer c.Close()
	select {
	case <-c.Ready():
	case <-c.Done():
		if err := c.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "rtm client:", err)
			return 1
		}
		return 0
	}
	in := repl.NewInterp(c, os.Stdout, repl.Options{Mode: "client", Name: f.label, KeepGoing: f.keepGoing, Console: console})
	quit := sigs(in, func(s os.Signal) {
		if s == syscall.SIGUSR1 {
			console.Printf("SIGUSR1: dropping local tables, asking for a fresh snapshot")
			c.Resync()
		}
	})
	// Piped commands run against the snapshot, then the client exits; a
	// watching client stays until the server quits or its reader goes.
	var outputGone <-chan struct{}
	if watcher != nil {
		outputGone = watcher.Gone()
	}
	src := stdinInput(&f)
	if len(commands) > 0 {
		// -c: the commands are the input, a stream of their own
		// ("-c:2: ..." names the second); stdin is not read.
		src = repl.Input{Name: "-c", R: strings.NewReader(strings.Join(commands, "\n") + "\n")}
	}
	end := repl.Session{In: in, Console: console, Scripts: f.scripts, Input: src, StayAtEOF: watch || toKernel, Quit: quit, Ended: c.Done(), OutputGone: outputGone}.Run()
	select {
	case <-c.Done():
		if err := c.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "rtm client:", err)
			return 1
		}
	default:
	}
	return end.Status
}

func testMode(args []string) int {
	return scenario.Main(args, os.Stdout, os.Stderr)
}

func benchMode(args []string) int {
	return bench.Main(args, os.Stdout, os.Stderr)
}

func lsMode(args []string) int {
	fs := newFlagSet("ls", "[--json]", "Lists this user's instances: the sockets in "+proto.SocketDir()+"\nand the stores in "+proto.StoreDir+". An instance is live (a server runs it),\nstopped (its store is kept for the next server), crashed (kept, and the next\nserver repairs it) or a stale socket (no server behind it; rtm rm removes it).\n")
	js := fs.Bool("json", false, "one JSON array")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	list, err := proto.Instances()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm ls:", err)
		return 1
	}
	if err := repl.WriteInstances(os.Stdout, list, *js); err != nil {
		fmt.Fprintln(os.Stderr, "rtm ls:", err)
		return 1
	}
	return 0
}

func rmMode(args []string) int {
	fs := newFlagSet("rm", "NAME...", "Removes stopped instances: the store (all its tables) and a stale socket.\nA live instance is refused: quit its server first.\n")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "rtm rm: want the NAME of an instance (rtm ls lists them)")
		return 2
	}
	rc := 0
	for _, name := range fs.Args() {
		removed, err := proto.RemoveInstance(name)
		for _, p := range removed {
			fmt.Printf("removed %s\n", p)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "rtm rm:", err)
			rc = 1
		}
	}
	return rc
}
