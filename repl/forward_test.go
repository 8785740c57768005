package repl

import "testing"

// TestLineSpans: consecutive lines of a file share a span; each line's
// location comes back as it was added, and past the end the last one's.
func TestLineSpans(t *testing.T) {
	var s lineSpans
	var want []Location
	add := func(file string, line int) {
		l := Location{File: file, Line: line}
		s.add(l)
		want = append(want, l)
	}
	for i := 1; i <= 500; i++ {
		add("a.rtm", i)
	}
	add("lib/b.rtm", 3) // a sourced file
	add("lib/b.rtm", 4)
	add("a.rtm", 502) // back in the first, past the source line
	add("", 0)        // the prompt
	add("", 0)
	if len(s.spans) != 5 || s.n != len(want) {
		t.Fatalf("%d spans over %d lines, want 5 over %d: %+v", len(s.spans), s.n, len(want), s.spans)
	}
	for i, w := range want {
		if got := s.at(i); got != w {
			t.Errorf("at(%d) = %v, want %v", i, got, w)
		}
	}
	if got := s.at(len(want) + 3); got != want[len(want)-1] {
		t.Errorf("past the end: %v, want the last line's", got)
	}
}
