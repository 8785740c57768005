package scenario

import "testing"

// TestLogLines: lines are counted whole, however the writes split them.
func TestLogLines(t *testing.T) {
	l := &logLines{prefix: checkpointPrefix}
	for _, w := range []string{
		"client a (pid 8) connected\ncheck", "point: store /dev/shm/x synced\n",
		"checkpoint: sync /dev/shm/x: input/output error\nchec", "kpoint: partial",
	} {
		if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	if n, last := l.count(); n != 2 || last != "checkpoint: sync /dev/shm/x: input/output error" {
		t.Errorf("count() = %d, %q; want 2 and the I/O error", n, last)
	}
	l.Write([]byte("\n"))
	if n, last := l.count(); n != 3 || last != "checkpoint: partial" {
		t.Errorf("after the newline: count() = %d, %q", n, last)
	}
}
