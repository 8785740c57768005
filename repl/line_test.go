package repl

import "testing"

func TestCleanLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"   \t\r\n", ""},
		{"# a comment", ""},
		{"  C,10.1.1.0/24,192.168.1.1,eth0  # note\n", "C,10.1.1.0/24,192.168.1.1,eth0"},
		{"C,10.1.1.0/24,192.168.1.1,eth#1\r\n", "C,10.1.1.0/24,192.168.1.1,eth#1"},
		{`source "my # file.rtm" # why`, `source "my # file.rtm"`},
	} {
		if got := string(CleanLine([]byte(tc.in))); got != tc.want {
			t.Errorf("CleanLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFirstWord(t *testing.T) {
	for _, tc := range []struct{ in, word, rest string }{
		{"", "", ""},
		{"quit", "quit", ""},
		{"  client start a", "client", " start a"},
		{"at\tb show macs", "at", "\tb show macs"},
	} {
		w, rest := FirstWord([]byte(tc.in))
		if w != tc.word || string(rest) != tc.rest {
			t.Errorf("FirstWord(%q) = %q, %q; want %q, %q", tc.in, w, rest, tc.word, tc.rest)
		}
	}
}
