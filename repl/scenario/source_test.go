package scenario

import (
	"errors"
	"path/filepath"
	"testing"

	"rtm/repl"
	"rtm/repl/rtmtest"
)

// TestScanSource: a file goes to the server whole only if it and what it
// sources hold nothing the runner must see.
func TestScanSource(t *testing.T) {
	dir := rtmtest.WriteFiles(t, map[string]string{
		"changes.inc":   "# routes\nC,10.1.1.0/24,192.168.1.1,eth0\n\nsource lib/macs.inc # and MACs\nshow routes\nflush macs\n",
		"lib/macs.inc":  "C,00:1a:2b:3c:4d:5e,10.1.1.7\nlookup 00:1a:2b:3c:4d:5e\nU,00:1a:2b:3c:4d:5e,10.1.1.8",
		"expect.inc":    "C,10.1.1.0/24,192.168.1.1,eth0\nexpect count routes 1\n",
		"sync.inc":      "C,10.1.1.0/24,192.168.1.1,eth0\nsync 5s\n",
		"quit.inc":      "quit\n",
		"directive.inc": "C,10.1.1.0/24,192.168.1.1,eth0\nclient start a\n",
		"at.inc":        "at server show routes\n",
		"bad.inc":       "C,10.1.1.1/24,192.168.1.1,eth0\n",
		"nested.inc":    "C,10.1.1.0/24,192.168.1.1,eth0\nsource expect.inc\n",
		"cycle.inc":     "C,10.1.1.0/24,192.168.1.1,eth0\nsource cycle2.inc\n",
		"cycle2.inc":    "source cycle.inc\n",
		"missing.inc":   "source nowhere.inc\n",
		"dir.inc":       "source lib\n",
	})
	s := &scenario{}
	p, ok := s.scanSource(filepath.Join(dir, "changes.inc"))
	if !ok {
		t.Fatal("changes.inc: not sent whole")
	}
	if p.lines != 7 || p.changes != 4 {
		t.Errorf("changes.inc: %d lines, %d changes; want 7 and 4", p.lines, p.changes)
	}
	// The flush, after the source.
	if want := (repl.Location{File: filepath.Join(dir, "changes.inc"), Line: 6}); p.last != want {
		t.Errorf("last change at %v, want %v", p.last, want)
	}
	if len(p.files) != 2 {
		t.Errorf("files %v, want changes.inc and lib/macs.inc", p.files)
	}
	for _, f := range []string{"expect.inc", "sync.inc", "quit.inc", "directive.inc", "at.inc", "bad.inc", "nested.inc", "cycle.inc", "missing.inc", "dir.inc"} {
		if _, ok := s.scanSource(filepath.Join(dir, f)); ok {
			t.Errorf("%s: sent whole; want it run line by line", f)
		}
	}
	// A file that sources one of the files being run is a cycle too.
	f, err := s.sources.Open(filepath.Join(dir, "lib/macs.inc"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, ok := s.scanSource(filepath.Join(dir, "changes.inc")); ok {
		t.Error("a source of a file being run: sent whole")
	}
}

// TestLocate: the server's refusal of a line of a file sent whole is
// reported at that line, named as the runner names the file.
func TestLocate(t *testing.T) {
	dir := rtmtest.WriteFiles(t, map[string]string{
		"a.inc":      "C,10.1.1.0/24,192.168.1.1,eth0\nsource a.inc.more\n",
		"a.inc.more": "# more\nD,10.9.0.0/16   # gone\n",
	})
	t.Chdir(filepath.Dir(dir))
	rel := filepath.Join(filepath.Base(dir), "a.inc")
	s := &scenario{}
	p, ok := s.scanSource(rel)
	if !ok {
		t.Fatal("not sent whole")
	}
	abs := filepath.Join(dir, "a.inc.more")
	got := s.locate(p, &processError{where: "server", msg: abs + ":2: delete route 10.9.0.0/16: not found"})
	var se *Error
	if !errors.As(got, &se) {
		t.Fatalf("locate: %v, want an *Error", got)
	}
	if want := (repl.Location{File: filepath.Join(filepath.Dir(rel), "a.inc.more"), Line: 2}); se.Loc != want || se.Text != "D,10.9.0.0/16" ||
		se.Where != "server" || se.Msg != "delete route 10.9.0.0/16: not found" {
		t.Errorf("located at %v %q, %q: %q", se.Loc, se.Where, se.Text, se.Msg)
	}
	// An error without a location stays as it is: the source line's.
	plain := &processError{where: "server", msg: "source: read: input/output error"}
	if got := s.locate(p, plain); got != error(plain) {
		t.Errorf("locate of an unlocated error: %v", got)
	}
}
