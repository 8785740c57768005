package repl

import (
	"flag"
	"io"
	"slices"
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
