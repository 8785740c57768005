// Command rtm is a routing table manager: one server owns an L3 routing
// table and an ARP-style MAC table in shared memory, and any number of
// clients subscribe to them over a SOCK_SEQPACKET socket.
//
// This file is the wiring only: modes, flags, defaults and signals. The
// work is done in store/ (the state), proto/ (the wire) and repl/ (the
// command language).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"rtm/proto"
	"rtm/repl"
	"rtm/repl/bench"
	"rtm/store"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `rtm: a routing table manager with shared-memory MAC table

Usage:
  rtm server  [flags]        own the tables; read commands from the prompt, stdin or --script
  rtm client  [flags]        subscribe to a server; read-only commands, --watch for changes
  rtm test    [flags] FILE…  run scenario files against real server and client processes
  rtm bench   [flags]        measure the workloads B1–B9 and this machine's limits
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
		fmt.Fprintf(os.Stderr, usage, defaultName, defaultSocket("NAME"))
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
	case "version", "--version", "-version":
		fmt.Printf("rtm %s (protocol %d, store layout %d, %s %s/%s)\n",
			version, proto.Version, store.LayoutVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Printf(usage, defaultName, defaultSocket("NAME"))
		return 0
	}
	fmt.Fprintf(os.Stderr, "rtm: unknown mode %q\n\n", args[0])
	fmt.Fprintf(os.Stderr, usage, defaultName, defaultSocket("NAME"))
	return 2
}

const defaultName = "default"

// defaultSocket follows the XDG runtime directory when there is one (it is
// private to the user and cleared at logout), else a private dir in /tmp.
func defaultSocket(name string) string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "rtm", name+".sock")
	}
	return filepath.Join(os.TempDir(), "rtm-"+strconv.Itoa(os.Getuid()), name+".sock")
}

func defaultStore(name string) string { return "/dev/shm/rtm." + name }

// instanceFlags are shared by server and client.
type instanceFlags struct {
	name, socket string
	scripts      multiFlag
	keepGoing    bool
	framed       bool
}

func (f *instanceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", defaultName, "instance `name`: picks the default socket and store")
	fs.StringVar(&f.socket, "socket", "", "socket `path` (default: "+defaultSocket("NAME")+")")
	fs.Var(&f.scripts, "script", "replay `FILE` before reading stdin or the prompt (repeatable)")
	fs.BoolVar(&f.keepGoing, "keep-going", false, "report every failing line of a replay instead of stopping at the first; the exit status is 1 all the same")
	fs.BoolVar(&f.framed, "framed", false, "the machine interface: after each command's output, one line \\x00ok or \\x00err<TAB>message (README: \"Driving rtm from a program\")")
}

// resolve checks the flags that name files and fills in the defaults.
// Nothing is created before it has passed.
func (f *instanceFlags) resolve() error {
	if err := checkInstanceName(f.name); err != nil {
		return err
	}
	if f.socket == "" {
		f.socket = defaultSocket(f.name)
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

// checkInstanceName admits plain file names: the name becomes part of the
// socket's and the store's file names.
func checkInstanceName(name string) error {
	ok := name != "" && len(name) <= 64 && isNameByte(name[0]) && name[0] != '.' && name[0] != '-'
	for i := 0; ok && i < len(name); i++ {
		ok = isNameByte(name[i])
	}
	if !ok {
		return fmt.Errorf("--name %q: want 1 to 64 letters, digits, '.', '-' or '_', not starting with '.' or '-'", name)
	}
	return nil
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
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
expect, sync) work as at the server; changes are refused.

With stdin piped, the commands run once the snapshot is in and the client
exits at end of input:  echo "show routes" | rtm client --name lab
At a terminal, or with --watch, it stays until "quit", Ctrl-D, SIGINT, SIGTERM
or the server quitting. If the server dies, the client keeps its tables,
reconnects with backoff and resyncs. SIGUSR1 drops the local tables and
takes a fresh snapshot.
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
		exitAtEOF     bool
		fresh, unlink bool
	)
	fs := newFlagSet("server", "[flags]", serverAbout)
	f.register(fs)
	fs.StringVar(&storePath, "store", "", "store `path` (default: /dev/shm/rtm.NAME; a regular file survives reboots)")
	fs.IntVar(&capacity, "capacity", store.DefaultCapacity, "MAC table `entries` when the store is created (an existing store keeps its own; with --fresh it is created anew)")
	fs.IntVar(&routeCapacity, "route-capacity", store.DefaultRouteCapacity, "route table `entries` when the store is created (as --capacity)")
	fs.BoolVar(&group, "group", false, "let the owner's group connect (socket and store mode 0660)")
	fs.Var(&allow, "allow-uid", "also accept clients of this `uid` (repeatable)")
	fs.BoolVar(&exitAtEOF, "exit-at-eof", false, "quit when piped stdin ends (default: keep serving until quit, SIGINT or SIGTERM)")
	fs.BoolVar(&fresh, "fresh", false, "start with empty tables even if the store holds some")
	fs.BoolVar(&unlink, "unlink", false, "remove the store on a clean quit (default: keep it for the next start)")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if err := f.resolve(); err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 2
	}
	if storePath == "" {
		storePath = defaultStore(f.name)
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
		Name: f.name, Socket: f.socket, Store: opts, Fresh: fresh, Unlink: unlink,
		GroupAccess: group, AllowUIDs: allow, Logf: console.Printf,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm server:", err)
		return 1
	}
	go srv.Serve()
	info := srv.Info()
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

	in := repl.NewInterp(srv, os.Stdout, repl.Options{Mode: "server", Name: f.name, KeepGoing: f.keepGoing, Console: console})
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
	end := drive(in, &f, !exitAtEOF, console, quit, nil)
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

// interactive says whether rtm talks to a person at a terminal.
func interactive() bool {
	return repl.IsTerminal(os.Stdin.Fd()) && repl.IsTerminal(os.Stdout.Fd())
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

// drive replays scripts, then stdin or the prompt, until the input ends,
// `quit`, a signal, or (for clients) the session ends. At the end of
// piped stdin, stayAtEOF keeps the process up (a server serving, a
// client watching) until a signal or the session ends. Whatever ends it,
// every answer already given is written before drive returns, and the
// exit status is 1 if any replayed line failed.
func drive(in *repl.Interp, f *instanceFlags, stayAtEOF bool, console *repl.Console, quit <-chan os.Signal, ended <-chan struct{}) ending {
	result := make(chan ending, 1)
	go func() {
		for _, s := range f.scripts {
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
		case f.framed:
			err = in.ServeFramed(os.Stdin, os.Stdout)
		case interactive():
			err = in.Interactive(console)
		default:
			err = in.RunReader("<stdin>", os.Stdin)
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
		f      instanceFlags
		client string
		watch  bool
		wait   time.Duration
	)
	fs := newFlagSet("client", "[flags]", clientAbout)
	f.register(fs)
	fs.StringVar(&client, "client-name", "", "`name` the server shows for this client: 1 to 64 printable characters (default: client-PID)")
	fs.BoolVar(&watch, "watch", false, "print every change as it arrives")
	fs.DurationVar(&wait, "wait", 0, "keep trying to reach the server for up to this `duration`")
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
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm client:", err)
		return 2
	}
	console := newConsole()
	opts := proto.ClientOptions{Socket: f.socket, Name: client, Logf: console.Printf}
	// Watched changes are the output of --watch: stdout (through the
	// prompt at a terminal), so `rtm client --watch | head -1` gets them,
	// and a reader that went away (EPIPE) ends the watch.
	outGone := make(chan struct{})
	if watch {
		var out io.Writer = os.Stdout
		if interactive() {
			out = console
		}
		var gone sync.Once
		opts.Watch = func(rec proto.Record, ip netip.Addr, snapshot bool) {
			if snapshot {
				console.Printf("snapshot applied")
				return
			}
			if _, err := out.Write(append(rec.AppendText(nil, ip), '\n')); err != nil {
				gone.Do(func() { close(outGone) })
			}
		}
	}
	c, err := dialWithin(opts, wait)
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
	end := drive(in, &f, watch, console, quit, ended)
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
	return bench.Main(args, os.Stdout, os.Stderr)
}
