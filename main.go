// Command rtm is a routing table manager: one server owns an L3 routing
// table and an ARP-style MAC table in shared memory, and any number of
// clients subscribe to them over a SOCK_SEQPACKET socket.
//
// This file parses the mode and dispatches: each mode's body, with its
// flags and help, lives with its concept (repl/server, repl/client,
// repl/scenario, repl/bench); the work is done in store/ (the state),
// proto/ (the wire) and repl/ (the command language).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"rtm/proto"
	"rtm/repl"
	"rtm/repl/bench"
	"rtm/repl/client"
	"rtm/repl/scenario"
	"rtm/repl/server"
	"rtm/store"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `rtm: a routing table manager with shared-memory MAC table

Usage:
  rtm server  [flags]          own the tables: commands from the prompt, stdin, --script, clients, --from-kernel
  rtm client  [flags]          subscribe to a server: read, send changes (-c), --watch, --to-kernel
  rtm test    [flags] FILE…    run scenario files against real server and client processes
  rtm bench   [flags]          measure B1–B9, F1, S1, W1, K1–K3 against this machine's own limits
  rtm ls      [--json]         list this user's instances: live, stopped, crashed, stale, unusable
  rtm rm      [--force] NAME…  remove stopped instances (their store and stale socket); --force: crashed too
  rtm version                  print version information

Every mode takes -h for its flags. Type "help" at the prompt for the command language.
An instance is named with --name (default %q): it picks the socket
(%s) and the store
(%s; $RTM_STORE_DIR names another directory).
`

func main() {
	// A closed stdout (rtm client | head) must not kill rtm with SIGPIPE;
	// writes report EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, usage, repl.DefaultInstance, proto.DefaultSocket("NAME"), proto.DefaultStore("NAME"))
		return 2
	}
	switch args[0] {
	case "server", "client":
		if err := checkFDLimit(args[0]); err != nil {
			fmt.Fprintf(os.Stderr, "rtm %s: %v\n", args[0], err)
			return 1
		}
	}
	switch args[0] {
	case "server":
		return server.Main(version, args[1:])
	case "client":
		return client.Main(args[1:])
	case "test":
		return testMode(args[1:])
	case "bench":
		return benchMode(args[1:])
	case "ls":
		return lsMode(args[1:])
	case "rm":
		return rmMode(args[1:])
	case "version", "--version", "-version":
		if len(args) > 1 {
			fmt.Fprintf(os.Stderr, "rtm version: takes no arguments (got %q)\n", strings.Join(args[1:], " "))
			return 2
		}
		fmt.Printf("rtm %s (protocol %d, store layout %d, %s %s/%s)\n",
			version, proto.Version, store.LayoutVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Printf(usage, repl.DefaultInstance, proto.DefaultSocket("NAME"), proto.DefaultStore("NAME"))
		return 0
	}
	fmt.Fprintf(os.Stderr, "rtm: unknown mode %q\n\n", args[0])
	fmt.Fprintf(os.Stderr, usage, repl.DefaultInstance, proto.DefaultSocket("NAME"), proto.DefaultStore("NAME"))
	return 2
}

func testMode(args []string) int {
	return scenario.Main(args, os.Stdout, os.Stderr)
}

func benchMode(args []string) int {
	return bench.Main(args, os.Stdout, os.Stderr)
}

func lsMode(args []string) int {
	fs := repl.NewFlagSet("ls", "[--json]", "Lists this user's instances: the sockets in "+proto.SocketDir()+"\nand the stores in "+proto.StoreDir()+" ($"+proto.StoreDirEnv+" if set). An instance is live (a server runs it),\nstopped (its store is kept for the next server), crashed (its server died: the\nnext one repairs the store), a stale socket (no server behind it; rtm rm\nremoves it) or unusable (a file where its store would be that is no store:\nrtm rm --force removes it). A server on its name's socket that keeps its store\nelsewhere (--store) leaves a link to it beside the socket (NAME.store) until it\nquits cleanly: after a crash, ls lists that store, crashed, and how to repair it.\nOnce stopped cleanly, such a store is not listed: rtm knows it by its path only.\n")
	js := fs.Bool("json", false, "one JSON array")
	if rc := repl.ParseFlags(fs, args); rc >= 0 {
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
	fs := repl.NewFlagSet("rm", "[--force] NAME...", "Removes stopped instances: the store (all its tables), a stale socket, and\nwhat a killed server leaves beside the store (its lock file, temporary files).\nA live instance is refused: quit its server first. A crashed one is refused\ntoo, unless --force: starting its server repairs the store and keeps its tables;\nand so is a file in a store's place that rtm cannot read as a store, and a file\nthat is no socket in its socket's place (it is left as it is). A crashed store\nkept elsewhere (--store), which rtm ls lists by its link, is the instance's\nstore: --force removes it, and the link; a link to anything else (a store\nclosed cleanly since, a file that is no store) is removed alone.\n")
	force := fs.Bool("force", false, "remove a crashed instance's store as it is, or a file in a store's place that is not one")
	if rc := repl.ParseFlagsAndArgs(fs, args); rc >= 0 {
		return rc
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "rtm rm: want the NAME of an instance (rtm ls lists them)")
		return 2
	}
	for _, name := range fs.Args() {
		// A name no instance can have is a mistake in the command, found
		// before anything is removed.
		if err := proto.CheckInstanceName(name); err != nil {
			fmt.Fprintln(os.Stderr, "rtm rm:", err)
			return 2
		}
	}
	rc := 0
	for _, name := range fs.Args() {
		removed, err := proto.RemoveInstance(name, *force)
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

// minFDs is the fewest file descriptors a server or a client starts
// with: below it, Go's runtime dies with a stack trace when it first
// needs its poller, after a server has made its store.
const minFDs = 16

// checkFDLimit refuses a limit on open files too low to start with.
// (Go raises the soft limit to the hard one by itself, so the hard one
// is what counts.)
func checkFDLimit(mode string) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur >= minFDs {
		return nil
	}
	more := ""
	if mode == "server" {
		more = ", and one more for each client"
	}
	return fmt.Errorf("the limit on open files (ulimit -n) is %d; rtm %s needs at least %d%s", rl.Cur, mode, minFDs, more)
}
