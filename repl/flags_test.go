package repl

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestParseFlagsAndArgs: flags may come before or after the arguments;
// after "--" every word is an argument, unless "--" is a flag's value.
func TestParseFlagsAndArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		run     string
		verbose bool
		rest    []string
	}{
		{[]string{"a.rtm", "-run", "x"}, "x", false, []string{"a.rtm"}},
		{[]string{"-v", "a.rtm", "b.rtm", "-run=y"}, "y", true, []string{"a.rtm", "b.rtm"}},
		{[]string{"a.rtm", "--", "-v"}, "", false, []string{"a.rtm", "-v"}},
		{[]string{"-run", "--", "a.rtm", "-v"}, "--", true, []string{"a.rtm"}},
		{[]string{"-v", "--", "-run", "x"}, "", true, []string{"-run", "x"}},
		{[]string{"-", "-v"}, "", true, []string{"-"}},
	} {
		fs := flag.NewFlagSet("rtm test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		run := fs.String("run", "", "")
		verbose := fs.Bool("v", false, "")
		if rc := ParseFlagsAndArgs(fs, tc.args); rc >= 0 {
			t.Errorf("%q: exit %d", tc.args, rc)
			continue
		}
		if *run != tc.run || *verbose != tc.verbose || !slices.Equal(fs.Args(), tc.rest) {
			t.Errorf("%q: -run %q -v %v args %q; want %q %v %q", tc.args, *run, *verbose, fs.Args(), tc.run, tc.verbose, tc.rest)
		}
	}
}

// TestResolveSocketAbsolute: a --socket given relative is made absolute,
// as --store is: a server says where it listens to clients in other
// directories. A relative XDG_RUNTIME_DIR is ignored, as the XDG
// specification says: it would name another directory in each working
// directory.
func TestResolveSocketAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	f := InstanceFlags{Name: DefaultInstance, Socket: "rel.sock"}
	if err := f.Resolve(); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "rel.sock"); f.Socket != want || f.Label != want {
		t.Errorf("--socket rel.sock resolved to %q (label %q), want %q", f.Socket, f.Label, want)
	}
	// From a directory so deep that the whole path would not fit a
	// socket's address, the path stays as given, which does.
	deep := t.TempDir()
	for len(deep) < 120 {
		deep = filepath.Join(deep, "deeper-directory")
	}
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(deep)
	f = InstanceFlags{Name: DefaultInstance, Socket: "s.sock"}
	if err := f.Resolve(); err != nil || f.Socket != "s.sock" {
		t.Errorf("--socket s.sock in a %d-byte directory resolved to %q (%v), want s.sock as given", len(deep), f.Socket, err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "relative")
	f = InstanceFlags{Name: "x"}
	if err := f.Resolve(); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(os.TempDir(), "rtm-"+strconv.Itoa(os.Getuid()), "x.sock"); f.Socket != want {
		t.Errorf("with XDG_RUNTIME_DIR=relative the socket is %q, want %q", f.Socket, want)
	}
}
