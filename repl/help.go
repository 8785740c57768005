package repl

import (
	"slices"
	"strings"
)

// helpSummary is what `help` prints: one line per command.
const helpSummary = `C,PREFIX,GATEWAY,DEV   create a route          C,10.1.1.0/24,192.168.1.1,eth0
                       (GATEWAY - : connected) C,192.0.2.0/24,-,veth0
C,MAC,IP               create a MAC entry      C,00:1a:2b:3c:4d:5e,10.1.1.7
U,...                  update (same fields as C; the key must exist)
R,...                  replace: create or update, like ip route replace
D,PREFIX | D,MAC       delete a route or a MAC entry
show TABLE [json]      list routes, macs, clients, stats or info (dev, within, count...)
lookup MAC [json]      the IP address of a MAC entry
route IP [json]        the route an address takes (longest-prefix match)
flush [routes|macs]    delete every route, every MAC entry, or both
dump                   both tables as C lines that replay them
source FILE            run the commands in FILE
sync [local] [TIMEOUT] wait until every client (local: this one) has every change
expect CHECK           assert on the tables; a failure stops the script
help [COMMAND]         this list, or the details of one command
quit                   leave (Ctrl-D at the prompt does the same)
Lines: one command each; # at the start or after white space starts a comment;
op letters and words are case-insensitive.
How rtm uses shared memory and sockets, step by step: README.md, "From the course to the code".`

// clientHelp follows helpSummary at a client.
const clientHelp = `
At this client: changes, show clients, show stats, show info and sync are the
server's to answer (it makes every change); show routes, show macs, lookup,
route, dump, expect, show stats local and sync local read this client's own
copy, MAC addresses from the shared store.`

// helpTopics holds `help COMMAND`, keyed by every name the topic answers to.
var helpTopics = map[string]string{
	"change": helpChange,
	"show":   helpShow,
	"lookup": helpLookup,
	"route":  helpRoute,
	"flush":  helpFlush,
	"dump":   helpDump,
	"source": helpSource,
	"sync":   helpSync,
	"expect": helpExpect,
	"help":   "help lists every command on one line each; help COMMAND explains one,\nwith examples: help expect, help C, help show.",
	"quit":   "quit ends the session (exit is the same). At the prompt Ctrl-D quits too;\nCtrl-C cancels the line being typed, or interrupts a running sync or source,\nbut does not quit. In a script, quit ends the replay: the lines after it are\nnot run (rtm reads ahead, so what follows it in a pipe is read all the same),\nand the exit status still says whether any line failed.",
}

// helpTopicNames are the topics help takes, for completion: the command
// words and the change letters.
func helpTopicNames() []string {
	return append(slices.Clone(commandWords), "C", "U", "D", "R")
}

// helpTopic finds the text for a topic name as typed (lowercased).
func helpTopic(name string) (string, bool) {
	switch name {
	case "c", "u", "d", "r", "create", "update", "delete", "replace":
		name = "change"
	case "exit":
		name = "quit"
	case ".":
		name = "source"
	}
	t, ok := helpTopics[name]
	return t, ok
}

const helpChange = `C (create), U (update), D (delete) and R (replace) change the tables. The
key decides the table: a prefix is a route, a MAC address is a MAC entry.

  C,PREFIX,GATEWAY,DEV    C,10.1.1.0/24,192.168.1.1,eth0
                          C,2001:db8:1::/48,fe80::1,eth1 (IPv6: gateway of the same family)
                          C,192.0.2.0/24,-,veth0 (no gateway: directly connected)
                          C,default,192.168.1.254,eth1 (0.0.0.0/0; ::/0 with an
                          IPv6 gateway, as ip -6 route; D,default is 0.0.0.0/0)
  U,PREFIX,GATEWAY,DEV    U,10.1.1.0/24,192.168.1.254,eth1
  D,PREFIX                D,10.1.1.0/24
  C,MAC,IP                C,00:1a:2b:3c:4d:5e,10.1.1.7
  U,MAC,IP                U,00:1a:2b:3c:4d:5e,2001:db8::7
  D,MAC                   D,00:1a:2b:3c:4d:5e
  R,...                   R,10.1.1.0/24,192.168.1.1,eth0: create it, or update it
                          if it exists (like ip route replace), so a setup script
                          can be replayed against tables that are kept

Op letters are case-insensitive and spaces around commas are allowed. MACs
are 6 bytes written aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF or aabb.ccdd.eeff,
and always printed lowercase with colons. A prefix must have no host bits
set (10.1.1.0/24, not 10.1.1.1/24); zoned addresses (fe80::1%eth0) are
refused; DEV is a Linux interface name: 1 to 15 bytes, no '/', ':' or space
(nor byte 0xa0, a space to Linux, which à and Р hold in UTF-8), no ','.
C of a key that exists, and U or D of a key that does not, are errors and
change nothing. At a client, changes are sent to the server, which makes
them (the server is the only writer of the store) and sends them to every
client; a client whose uid the server does not let write is refused.`

const helpShow = `show TABLE [json] lists a table, one entry per line, sorted by key:

  show routes     10.1.1.0/24 via 192.168.1.1 dev eth0      (as ip route prints)
                  192.0.2.0/24 dev veth0                    (connected: no gateway)
  show macs       00:1a:2b:3c:4d:5e 10.1.1.7                (the key, the MAC, first)
  show clients    the connected clients: name, pid, uid, state, acknowledged change,
                  lag, changes made, whether it may write (a client asks the server)
  show stats      the counters, one "name value" per line (a client asks the
                  server; show stats local is the client's own)
  show info       instance, pid, version, uptime, socket, store (created, reopened or
                  recovered), the fill of both tables, the change log, the clients,
                  the kernel table or zebra it follows, if any (a client asks the server)

Some entries only, or how many:
  show routes dev eth0                   routes out of eth0
  show routes within 10.0.0.0/8          routes inside 10.0.0.0/8 (it too)
  show macs 02:00:*                      MACs that start with 02:00 (02-00-* and
                                         0200.* too)
  show routes dev eth0 count             how many, not which
  show clients count                     how many clients are connected

With json (or -json) the table prints as JSON on one line, for scripts:
show routes json, show -json macs.
  [{"dst":"10.1.1.0/24","gateway":"192.168.1.1","dev":"eth0"}]
  [{"mac":"00:1a:2b:3c:4d:5e","ip":"10.1.1.7"}]
  {"routes":2,"macs":1,...}                                 (show stats json)
  {"count":2}                                               (... count json)`

const helpLookup = `lookup MAC [json] prints the MAC entry, MAC first, with the IP read from
the shared store; a MAC that is not in the table is an error.

  lookup 00:1a:2b:3c:4d:5e          00:1a:2b:3c:4d:5e 10.1.1.7
  lookup 001a.2b3c.4d5e json        {"mac":"00:1a:2b:3c:4d:5e","ip":"10.1.1.7"}`

const helpRoute = `route IP [json] prints the route that traffic to IP takes: the longest
prefix that contains it. No matching route is an error.

  route 10.1.1.7        10.1.1.0/24 via 192.168.1.1 dev eth0
  route 2001:db8:1::9   2001:db8:1::/48 via fe80::1 dev eth1`

const helpFlush = `flush deletes every route and every MAC entry; flush routes and flush macs
delete one table. Every client is told.

  flush
  flush macs`

const helpDump = `dump prints both tables as create lines, routes first, then MAC entries:
replaying them into an empty server rebuilds the tables exactly.

  dump                        C,10.1.1.0/24,192.168.1.1,eth0
                              C,00:1a:2b:3c:4d:5e,10.1.1.7
  rtm client -c dump > snap.rtm; rtm server --fresh --script snap.rtm`

const helpSource = `source FILE runs the commands of FILE as if typed here. A relative FILE is
found from the directory of the file that sources it (from the current
directory at the prompt). Sourced files may source others; a file that
sources itself, directly or not, is an error. An error inside FILE names
that file and line: lib/base.rtm:7: ...

  source lib/base.rtm
  source "my routes.rtm"`

const helpSync = `sync [TIMEOUT] waits until every connected client has applied every change
made so far; at a client it asks the server, which waits the same way. It
fails after TIMEOUT, naming the clients that lag behind; Ctrl-C ends it.
sync local waits only until this process has every change the server had
made when it was asked (at the server: at once). TIMEOUT is a duration
(500ms, 5s, 1m) or plain seconds; the default is 10s.

  sync
  sync 2s
  sync local`

const helpExpect = `expect CHECK asserts on the tables. A failed expectation is an error, so it
stops a script with file:line and what was wanted against what was found.

  expect route PREFIX [via GW] [dev DEV]   the route exists (with that gateway, device)
  expect no route PREFIX                   no route for exactly PREFIX
  expect mac MAC [IP]                      the MAC entry exists (with that IP)
  expect no mac MAC                        the MAC entry does not exist
  expect count routes|macs|clients N       the table holds exactly N entries
  expect error COMMAND                     COMMAND runs and must fail (a failing
                                           change changes nothing; a source keeps
                                           the lines before the one that failed);
                                           if it works, the expectation fails and
                                           its change stays

The route form is what show routes prints, so its output can be pasted back:
  expect route 10.1.1.0/24 via 192.168.1.1 dev eth0
  expect mac 00:1a:2b:3c:4d:5e 10.1.1.7
  expect count macs 1000
  expect error C,10.1.1.0/24,192.168.1.1,eth0      (already exists)
  expect error C,10.1.1.1/24,192.168.1.1,eth0      (host bits set: refused)`

// helpText returns `help` (topic "") or `help TOPIC`.
func helpText(topic string) string {
	if topic == "" {
		return helpSummary
	}
	t, _ := helpTopic(strings.ToLower(topic))
	return t
}

// ServerAbout and ClientAbout are what `rtm server -h` and `rtm client -h`
// say of the mode before its flags; they sit with the language's help so
// that all of rtm's help reads in one place.
const ServerAbout = `Owns the routing table and the MAC table, writes them to the shared store,
and sends every change to the connected clients. Commands come from the
--script files, then from the prompt (at a terminal) or from stdin (a pipe),
and from clients of its uid (or root, or --allow-write-uid), which it runs
as its own lines; with --from-kernel, from the kernel of its network
namespace too, and with --from-fpm, from FRR's zebra. Type "help" at the
prompt, or see README.md, for the command language.

At the end of piped stdin the server keeps serving until "quit", SIGINT or
SIGTERM (so "rtm server </dev/null &" runs in the background); --exit-at-eof
makes it quit there instead, as the end of --framed input does (the
program driving it is done), and Ctrl-D at a terminal quits. A line of
piped input that fails (a bad change, a lookup not found) stops the replay
and quits the server, exit status 1, as in ip -batch: --keep-going goes on
past failed lines, and --framed answers each line and goes on (for a
program that asks questions); a line typed at a terminal is reported and
the next one runs, with stdout piped too (rtm server | tee log), as at the
prompt: exit status 0. On quit,
clients get every change, are told, and exit; the socket file is removed. The store is kept, so the next start
has the same tables (--fresh empties them, --unlink removes the file). After
a crash (SIGKILL, or SIGQUIT: kill -QUIT, or Ctrl-\ except at the prompt,
which reads it as a key) the next start validates and repairs
the store and carries on; clients reconnect by themselves. SIGHUP syncs the
store to its file; SIGUSR2 logs the counters (show stats) on stderr.
`

const ClientAbout = `Subscribes to a server: receives the whole tables on connect, then every
change. Routes are kept locally; MAC addresses are read from the server's
shared store, mapped read-only. Commands that read the tables (show
routes, show macs, lookup, route, dump, expect but expect count clients,
sync local) are answered from this copy, and show stats local; show
clients, show stats and show info are the server's, sync waits until
every client has every change so far, and changes (C, U, D, R, flush) are
sent to the server, which applies them as if typed there and sends them
to every client, this one too. A client of the server's uid
(or root) may change the tables; others only if the server allows their
uid with --allow-write-uid.

One-shot:     rtm client --name lab -c 'C,10.1.1.0/24,192.168.1.1,eth0' -c 'show routes'
Batch:        rtm client --name lab < changes.rtm   (stops at the first error;
              --keep-going goes on, like ip -batch -force; the exit status is 1
              if any line failed)
With stdin piped, the commands run once the snapshot is in and the client
exits at end of input, or when the server quits: then, with input still
to come, it names the line it would run next as not applied, nor any
after it (exit status 1). At a terminal, or with --watch or --to-kernel,
it stays until "quit", Ctrl-D (at a terminal), SIGINT, SIGTERM or the
server quitting (with --framed, the end of its input ends it too: the
program driving it is done); --watch with stdout not the terminal
(| less, > log) reads no keys from it, which are the pager's: Ctrl-C or
the pager's end ends it. If the server dies, the client keeps its
tables, reconnects with backoff and resyncs; if the server refuses it
(its uid, its name), it exits with the reason. SIGUSR1 drops the local
tables and takes a fresh snapshot; SIGUSR2 logs its counters (show stats
local) on stderr, for a client whose input takes no command. SIGHUP is
ignored: a watcher or a --to-kernel client outlives the terminal that
started it, as a server does (SIGTERM ends it).
`
