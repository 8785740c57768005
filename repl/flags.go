package repl

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"rtm/proto"
)

// The flags the modes share, and how every mode parses its own: `rtm
// server`, `rtm client`, `rtm ls` and `rtm rm` each have a flag set of
// their own, with its help, and take no arguments but flags.

// DefaultInstance is the instance a mode works on without --name.
const DefaultInstance = "default"

// InstanceFlags are the flags of server and client: which instance, and
// how its commands are read.
type InstanceFlags struct {
	Name, Socket string
	Label        string // names the instance in prompts and hints
	Scripts      []string
	KeepGoing    bool
	Framed       bool
}

// Register adds the flags to fs.
func (f *InstanceFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Name, "name", DefaultInstance, "instance `name`: picks the default socket and store")
	fs.StringVar(&f.Socket, "socket", "", "socket `path` (default: "+proto.DefaultSocket("NAME")+")")
	ListFlag(fs, &f.Scripts, "script", "replay `FILE` before reading stdin or the prompt (repeatable)", func(v string) (string, error) { return v, nil })
	fs.BoolVar(&f.KeepGoing, "keep-going", false, "report every failing line of a replay instead of stopping at the first; the exit status is 1 all the same")
	fs.BoolVar(&f.Framed, "framed", false, "the machine interface: after each command's output, one line \\x00ok or \\x00err<TAB>message (README: \"Driving rtm from a program\")")
}

// Resolve checks the flags that name files and fills in the defaults.
// Nothing is created before it has passed.
func (f *InstanceFlags) Resolve() error {
	if err := proto.CheckInstanceName(f.Name); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	// A socket given without a name is the only name the instance has
	// here: the prompt shows it rather than a "default" that isn't.
	f.Label = f.Name
	if f.Socket == "" {
		f.Socket = proto.DefaultSocket(f.Name)
	} else {
		// A server says where it listens (its banner, show info, rtm
		// ls) to clients in other directories, as it says its store;
		// unless the whole path is too long for a socket's address,
		// where the path as given, from a deep directory, still fits.
		if abs, err := filepath.Abs(f.Socket); err == nil && proto.SocketPathFits(abs) {
			f.Socket = abs
		}
		if f.Name == DefaultInstance {
			f.Label = f.Socket
		}
	}
	for _, s := range f.Scripts {
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

// ListFlag adds a repeatable flag whose values parse appends to list.
func ListFlag[T any](fs *flag.FlagSet, list *[]T, name, usage string, parse func(string) (T, error)) {
	fs.Func(name, usage, func(v string) error {
		x, err := parse(v)
		*list = append(*list, x)
		return err
	})
}

// ParseUID reads a numeric uid, as --allow-uid takes it.
func ParseUID(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("want a numeric uid, got %q", v)
	}
	return uint32(n), nil
}

// NewFlagSet returns the flag set of `rtm MODE`, whose -h prints the
// synopsis and about before the flags.
func NewFlagSet(mode, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("rtm "+mode, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rtm %s %s\n\n%s\nFlags:\n", mode, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags returns -1 to continue, else the exit status. The modes take
// no arguments but flags: a stray word is a usage error, caught before
// anything is created.
func ParseFlags(fs *flag.FlagSet, args []string) int {
	if rc := ParseFlagsAndArgs(fs, args); rc >= 0 {
		return rc
	}
	if fs.NArg() > 0 {
		hint := ""
		if fs.Lookup("script") != nil {
			hint = " (files to replay go after --script)"
		}
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q: this mode takes flags only%s; see %s -h\n", fs.Name(), fs.Arg(0), hint, fs.Name())
		return 2
	}
	return -1
}

// ParseFlagsAndArgs is ParseFlags for a mode that takes arguments (rtm rm
// NAME..., rtm test FILE...). Flags may come after arguments too (rtm
// test scripts/ -run late), as a person types them; after "--" every
// word is an argument. fs.Args() holds the arguments.
func ParseFlagsAndArgs(fs *flag.FlagSet, args []string) int {
	// A mistake gets its one line and a hint, not every flag: -h has those.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	err := fs.Parse(args)
	for err == nil && fs.NArg() > 0 {
		// Parse stops at the first argument, or past "--".
		rest := fs.Args()
		if ended := len(args) - len(rest); ended > 0 && args[ended-1] == "--" && !flagValue(fs, args[:ended-1]) {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
		err = fs.Parse(args)
	}
	if err == nil {
		fs.Parse(append([]string{"--"}, positional...))
	}
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return 0
	}
	if err != nil {
		fmt.Fprintf(out, "%s: %v; see %s -h\n", fs.Name(), err, fs.Name())
		return 2
	}
	return -1
}

// flagValue says whether the word after before is the value of the flag
// that ends before (-run --), not a word of its own.
func flagValue(fs *flag.FlagSet, before []string) bool {
	if len(before) == 0 {
		return false
	}
	w := before[len(before)-1]
	name := strings.TrimLeft(w, "-")
	if !strings.HasPrefix(w, "-") || w == "--" || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// FlagGiven reports whether the command line gave the flag.
func FlagGiven(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// CheckTuning refuses flags that tune a feature without the flag that
// turns it on: --kernel-table without --from-kernel.
func CheckTuning(fs *flag.FlagSet, on bool, what string, tuning ...string) error {
	for _, n := range tuning {
		if !on && FlagGiven(fs, n) {
			return fmt.Errorf("--%s tunes %s: give %s too", n, what, what)
		}
	}
	return nil
}

// DurationFlag adds a flag that takes a duration as Go writes it (500ms,
// 5s, 1m) or plain seconds (5, 0.5), as sync's TIMEOUT does.
func DurationFlag(fs *flag.FlagSet, d *time.Duration, name string, value time.Duration, usage string) {
	*d = value
	fs.Func(name, usage, func(v string) error {
		x, err := time.ParseDuration(v)
		if err != nil {
			s, ferr := strconv.ParseFloat(v, 64)
			if ferr != nil || s < 0 || s > (1<<62)/float64(time.Second) {
				return fmt.Errorf("want a duration such as 5s, 500ms or 1m (or seconds: 5)")
			}
			x = time.Duration(s * float64(time.Second))
		}
		if x < 0 {
			return fmt.Errorf("want a duration of 0 or more")
		}
		*d = x
		return nil
	})
}
