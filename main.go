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
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/chzyer/readline"

	"rtm/proto"
	"rtm/proto/kernel"
	"rtm/repl"
	"rtm/store"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `rtm: a routing table manager with shared-memory MAC table

Usage:
  rtm server  [flags]        own the tables; read commands from the prompt, stdin or --script
  rtm client  [flags]        subscribe to a server; read-only commands, --watch for changes
  rtm test    [flags] FILE…  run scenario files against real server and client processes
  rtm bench   [flags]        measure rtm against the targets and this machine's limits
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
	scripts      multiFlag
	keepGoing    bool
	framed       bool
}

func (f *instanceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", defaultName, "instance `name`: picks the default socket and store")
	fs.StringVar(&f.socket, "socket", "", "socket `path` (default: "+proto.DefaultSocket("NAME")+")")
	fs.Var(&f.scripts, "script", "replay `FILE` before reading stdin or the prompt (repeatable)")
	fs.BoolVar(&f.keepGoing, "keep-going", false, "report every failing line of a replay instead of stopping at the first; the exit status is 1 all the same")
	fs.BoolVar(&f.framed, "framed", false, "the machine interface: after each command's output, one line \\x00ok or \\x00err<TAB>message (README: \"Driving rtm from a program\")")
}

// resolve checks the flags that name files and fills in the defaults.
// Nothing is created before it has passed.
func (f *instanceFlags) resolve() error {
	if err := proto.CheckInstanceName(f.name); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	if f.socket == "" {
		f.socket = proto.DefaultSocket(f.name)
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

// kernelTable is a routing table: main (0 for package kernel) or a number.
type kernelTable uint32

func (t *kernelTable) String() string {
	if *t == 0 {
		return "main"
	}
	return strconv.FormatUint(uint64(*t), 10)
}

func (t *kernelTable) Set(v string) error {
	if v == "main" {
		*t = 0
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return fmt.Errorf("want main or a table number from 1, got %q", v)
	}
	*t = kernelTable(n)
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

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type uidList []uint32

func (u *uidList) String() string { return fmt.Sprint(*u) }
func (u *uidList) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("want a numeric uid, got %q", v)
	}
	*u = append(*u, uint32(n))
	return nil
}

func newFlagSet(mode, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("rtm "+mode, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rtm %s %s\n\n%s\nFlags:\n", mode, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

const serverAbout = `Owns the routing table and the MAC table, writes them to the shared store,
and sends every change to the connected clients. Commands come from the
--script files, then from the prompt (at a terminal) or from stdin (a pipe).
Type "help" at the prompt, or see README.md, for the command language.

At the end of piped stdin the server keeps serving until "quit", SIGINT or
SIGTERM (so "rtm server </dev/null &" runs in the background); --exit-at-eof
makes it quit there instead. On quit, clients get every change, are told,
and exit; the socket file is removed. The store is kept, so the next start
has the same tables (--fresh empties them, --unlink removes the file). After
a crash (SIGKILL) the next start validates and repairs the store and carries
on; clients reconnect by themselves. SIGHUP syncs the store to its file.
`

const clientAbout = `Subscribes to a server: receives the whole tables on connect, then every
change. Routes are kept locally; MAC addresses are read from the server's
shared store, mapped read-only. Commands that read (show, lookup, route,
expect, sync, dump) are answered from this copy; changes (C, U, D, R,
flush) are sent to the server, which applies them as if typed there and
sends them to every client, this one too. A client of the server's uid
(or root) may change the tables; others only if the server allows their
uid with --allow-write-uid.

One-shot:     rtm client --name lab -c 'C,10.1.1.0/24,192.168.1.1,eth0' -c 'show routes'
Batch:        rtm client --name lab < changes.rtm   (stops at the first error;
              --keep-going goes on, like ip -batch -force; the exit status is 1
              if any line failed)
With stdin piped, the commands run once the snapshot is in and the client
exits at end of input. At a terminal, or with --watch, it stays until "quit",
Ctrl-D, SIGINT, SIGTERM or the server quitting. If the server dies, the
client keeps its tables, reconnects with backoff and resyncs; if the server
refuses it (its uid, its name), it exits with the reason. SIGUSR1 drops the
local tables and takes a fresh snapshot.
`

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
		allow         uidList
		allowWrite    uidList
		exitAtEOF     bool
		fresh, unlink bool
		fromKernel    bool
		table         kernelTable
		prefer        int
	)
	fs := newFlagSet("server", "[flags]", serverAbout)
	f.register(fs)
	fs.StringVar(&storePath, "store", "", "store `path` (default: /dev/shm/rtm.NAME; a regular file survives reboots)")
	fs.IntVar(&capacity, "capacity", store.DefaultCapacity, "MAC table `entries` when the store is created (an existing store keeps its own; with --fresh it is created anew)")
	fs.IntVar(&routeCapacity, "route-capacity", store.DefaultRouteCapacity, "route table `entries` when the store is created (as --capacity)")
	fs.BoolVar(&group, "group", false, "let the owner's group connect (socket and store mode 0660)")
	fs.Var(&allow, "allow-uid", "also accept clients of this `uid`, to read (repeatable)")
	fs.Var(&allowWrite, "allow-write-uid", "also accept clients of this `uid`, to read and change the tables (repeatable; the server's own uid and root always may)")
	fs.BoolVar(&exitAtEOF, "exit-at-eof", false, "quit when piped stdin ends (default: keep serving until quit, SIGINT or SIGTERM)")
	fs.BoolVar(&fresh, "fresh", false, "start with empty tables even if the store holds some")
	fs.BoolVar(&unlink, "unlink", false, "remove the store on a clean quit (default: keep it for the next start)")
	fs.BoolVar(&fromKernel, "from-kernel", false, "mirror the kernel of this network namespace: dump its routes and neighbours, then follow them (implies --fresh; typed changes still work)")
	fs.Var(&table, "kernel-table", "with --from-kernel: the routing `table` to follow, main or a number")
	fs.IntVar(&prefer, "kernel-prefer", 4, "with --from-kernel: the address `family` (4 or 6) whose neighbour wins when several IPs share one MAC")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if err := f.resolve(); err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 2
	}
	if err := checkKernelFlags(fs, fromKernel, "--from-kernel", "kernel-table", "kernel-prefer"); err != nil || prefer != 4 && prefer != 6 {
		if err == nil {
			err = fmt.Errorf("--kernel-prefer %d: want 4 or 6", prefer)
		}
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
	srv, err := proto.Start(proto.ServerOptions{
		Name: f.name, Version: version, Socket: f.socket, Store: opts, Fresh: fresh, Unlink: unlink,
		GroupAccess: group, AllowUIDs: allow, AllowWriteUIDs: allowWrite, Logf: console.Printf,
		// A client's lines run on the same path as the server's own.
		Commands: func(o *proto.Origin) proto.Commands {
			return repl.NewInterp(o, io.Discard, repl.Options{Mode: "server", Name: f.name})
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 1
	}
	if fromKernel {
		im, err := srv.ImportKernel(context.Background(), kernel.ImporterOptions{Table: uint32(table), PreferFamily: prefer, Logf: console.Printf})
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
	end := drive(in, f.scripts, stdinInput(&f), !exitAtEOF, console, quit, nil)
	reason := "server " + f.name + " quit"
	if end.signal != nil {
		reason = "server " + f.name + " got " + end.signal.String()
	}
	if end.startFailed {
		srv.Abandon(reason, 2*time.Second)
		return end.rc
	}
	if err := srv.Close(reason, 2*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 1
	}
	return end.rc
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

// ending is how a session's input ended.
type ending struct {
	rc          int
	signal      os.Signal // the signal that ended it, if one did
	startFailed bool      // a --script failed: the process never got to serve
}

// quiesceTimeout bounds how long an exit waits for the command in
// progress to finish writing its answer.
const quiesceTimeout = 2 * time.Second

// input is where a session's commands come from after its scripts.
type input struct {
	name   string    // "<stdin>", "-c": stands for r in messages
	r      io.Reader // nil: the prompt
	framed bool      // the machine interface on stdin and stdout
}

// stdinInput reads stdin: framed, at the prompt (a terminal), or plain.
func stdinInput(f *instanceFlags) input {
	switch {
	case f.framed:
		return input{framed: true}
	case interactive():
		return input{}
	}
	return input{name: "<stdin>", r: os.Stdin}
}

// drive replays scripts, then src, until the input ends, `quit`, a
// signal, or (for clients) the session ends. At the end of piped input,
// stayAtEOF keeps the process up (a server serving, a client watching)
// until a signal or the session ends. Whatever ends it, every answer
// already given is written before drive returns, and the exit status is
// 1 if any replayed line failed.
func drive(in *repl.Interp, scripts []string, src input, stayAtEOF bool, console *repl.Console, quit <-chan os.Signal, ended <-chan struct{}) ending {
	result := make(chan ending, 1)
	go func() {
		for _, s := range scripts {
			err := in.RunFile(s)
			switch {
			case err == nil:
			case errors.Is(err, repl.ErrQuit):
				result <- ending{}
				return
			case errors.Is(err, repl.ErrFailed):
				// --keep-going: each failed line was reported; the exit
				// status will say so, and the session goes on.
				report(err)
			default:
				report(err)
				result <- ending{rc: 1, startFailed: !errors.Is(err, repl.ErrInterrupted)}
				return
			}
		}
		var err error
		switch {
		case src.framed:
			err = in.ServeFramed(os.Stdin, os.Stdout)
		case src.r == nil:
			err = in.Interactive(console)
		default:
			err = in.RunReader(src.name, src.r)
			if err == nil && stayAtEOF {
				// End of piped input does not end a server (clients still
				// need it; a script ends it with quit) nor a watching client.
				select {}
			}
		}
		if err != nil && !errors.Is(err, repl.ErrQuit) {
			report(err)
			result <- ending{rc: 1}
			return
		}
		result <- ending{}
	}()
	var end ending
	select {
	case end = <-result:
	case s := <-quit:
		end.signal = s
		in.Interrupt()
		in.Quiesce(quiesceTimeout)
		console.Close()
	case <-ended:
		in.Interrupt()
		in.Quiesce(quiesceTimeout)
		console.Close()
	}
	if end.rc == 0 && in.Failed() > 0 {
		end.rc = 1
	}
	return end
}

// report prints the error that ended a replay; an interrupted one was
// ended on purpose.
func report(err error) {
	if !errors.Is(err, repl.ErrInterrupted) {
		fmt.Fprintln(os.Stderr, err)
	}
}

func clientMode(args []string) int {
	var (
		f        instanceFlags
		client   string
		watch    bool
		watchOpt repl.WatchOptions
		wait     time.Duration
		commands multiFlag
		toKernel bool
		table    kernelTable
		protocol int
		metric   uint
	)
	fs := newFlagSet("client", "[flags]", clientAbout)
	f.register(fs)
	fs.StringVar(&client, "client-name", "", "`name` the server shows for this client: 1 to 64 printable characters (default: client-PID)")
	fs.BoolVar(&watch, "watch", false, "print every change as it arrives, as a command that replays it (C,…, U,…, D,…, flush), with its sequence number in a comment")
	fs.BoolVar(&watchOpt.Times, "ts", false, "with --watch: the time each change arrived, in the comment (like ip monitor -ts)")
	fs.BoolVar(&watchOpt.JSON, "json", false, "with --watch: one JSON object per change instead")
	fs.DurationVar(&wait, "wait", 0, "keep trying to reach the server for up to this `duration`")
	fs.Var(&commands, "c", "run `COMMAND` and exit, instead of reading stdin (repeatable, in order; like vtysh -c)")
	fs.BoolVar(&toKernel, "to-kernel", false, "install the tables into the kernel of this network namespace: routes, and each MAC as a permanent neighbour on the device of its route; rtm's entries carry --kernel-proto, others are never touched")
	fs.Var(&table, "kernel-table", "with --to-kernel: the routing `table` to install into, main or a number")
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
	var startWatch func(*proto.Client)
	// Watched changes are the output of --watch: stdout (through the
	// prompt at a terminal), so `rtm client --watch | head -1` gets them,
	// and a reader that went away (EPIPE) ends the watch.
	outGone := make(chan struct{})
	var watcher *repl.Watcher // made once the session exists: it reads its tables
	if watch {
		var out io.Writer = os.Stdout
		if interactive() {
			out = console
		}
		var gone sync.Once
		ready := make(chan struct{})
		opts.Watch = func(ev proto.WatchEvent) {
			<-ready
			if err := watcher.Event(ev); err != nil {
				gone.Do(func() { close(outGone) })
			}
		}
		// The session may see its snapshot before Dial returns; the
		// watcher, which reads the session's tables, starts right after.
		startWatch = func(c *proto.Client) {
			watcher = repl.NewWatcher(c, out, watchOpt)
			close(ready)
		}
	}
	if toKernel {
		inst, err := kernel.NewInstaller(kernel.InstallerOptions{Table: uint32(table), Protocol: uint8(protocol), Metric: uint32(metric), Logf: console.Printf})
		if err != nil {
			fmt.Fprintln(os.Stderr, "rtm client: --to-kernel:", err)
			return 1
		}
		defer inst.Close()
		opts.Install = inst
	}
	c, err := dialWithin(opts, wait)
	if err == nil && startWatch != nil {
		startWatch(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm client:", err)
		if !errors.Is(err, proto.ErrRefused) {
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
	in := repl.NewInterp(c, os.Stdout, repl.Options{Mode: "client", Name: f.name, KeepGoing: f.keepGoing, Console: console})
	quit := sigs(in, func(s os.Signal) {
		if s == syscall.SIGUSR1 {
			console.Printf("SIGUSR1: dropping local tables, asking for a fresh snapshot")
			c.Resync()
		}
	})
	// Piped commands run against the snapshot, then the client exits; a
	// watching client stays until the server quits or its reader goes.
	ended := c.Done()
	if watch {
		ended = either(c.Done(), outGone)
	}
	src := stdinInput(&f)
	if len(commands) > 0 {
		// -c: the commands are the input, a stream of their own
		// ("-c:2: ..." names the second); stdin is not read.
		src = input{name: "-c", r: strings.NewReader(strings.Join(commands, "\n") + "\n")}
	}
	end := drive(in, f.scripts, src, watch || toKernel, console, quit, ended)
	select {
	case <-c.Done():
		if err := c.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "rtm client:", err)
			return 1
		}
	default:
	}
	return end.rc
}

// either is closed once a or b is.
func either(a, b <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-a:
		case <-b:
		}
		close(ch)
	}()
	return ch
}

func dialWithin(opts proto.ClientOptions, wait time.Duration) (*proto.Client, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := proto.Dial(opts)
		if err == nil || errors.Is(err, proto.ErrRefused) || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testMode(args []string) int {
	return repl.Test(args, os.Stdout, os.Stderr)
}

func benchMode(args []string) int {
	return repl.Bench(args, os.Stdout, os.Stderr)
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
	if *js {
		if list == nil {
			list = []proto.Instance{}
		}
		b, _ := json.Marshal(list)
		fmt.Println(string(b))
		return 0
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tROUTES\tMACS\tSIZE\tCHANGED\tSTORE")
	for _, in := range list {
		pid, routes, macs, size, changed, path := "-", "-", "-", "-", "-", "-"
		if in.PID != 0 {
			pid = strconv.Itoa(in.PID)
		}
		if st := in.Store; st != nil {
			routes = fmt.Sprintf("%d/%d", st.Routes, st.RouteCapacity)
			macs = fmt.Sprintf("%d/%d", st.MACs, st.MACCapacity)
			size = fmt.Sprintf("%.1f MiB", float64(st.Bytes)/(1<<20))
			path = st.Path
			if !st.Changed.IsZero() {
				changed = st.Changed.Format("2006-01-02 15:04:05")
			}
		}
		if in.Issue != "" {
			path += " (" + in.Issue + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.State, pid, routes, macs, size, changed, path)
	}
	tw.Flush()
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
