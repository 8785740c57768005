package repl

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// gateWriter blocks every write until open is closed; entered is
// closed when the first write begins.
type gateWriter struct {
	open, entered chan struct{}
	once          sync.Once
	mu            sync.Mutex
	b             strings.Builder
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Write(p)
}

func (g *gateWriter) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.String()
}

// TestLoggerNeverWaits: with its terminal blocked, Printf returns at once;
// lines past the queue are dropped and counted, and the count is said
// once the queue is written, before the lines logged after it.
func TestLoggerNeverWaits(t *testing.T) {
	g := &gateWriter{open: make(chan struct{}), entered: make(chan struct{})}
	l := NewLogger(NewConsole(g))
	start := time.Now()
	l.Printf("line 0")
	<-g.entered // the writer holds line 0; the queue takes the next logQueue
	for i := 1; i <= logQueue+10; i++ {
		l.Printf("line %d", i)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Printf waited on a blocked terminal: %v", d)
	}
	close(g.open)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(g.String(), "dropped"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no drop notice once the terminal took lines again:\n%s", g.String())
		}
	}
	l.Printf("after")
	l.Close(5 * time.Second)
	out := g.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != logQueue+3 {
		t.Fatalf("%d lines written, want %d", len(lines), logQueue+3)
	}
	want := []string{"line 0", "line 1"}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	if got := lines[len(lines)-2]; got != "(10 log lines dropped: the log's reader fell behind)" {
		t.Errorf("drop notice = %q", got)
	}
	if got := lines[len(lines)-1]; got != "after" {
		t.Errorf("last line = %q, want after", got)
	}
}
