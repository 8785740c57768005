package main

// README.md promises that its examples are true: these tests run them.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"rtm/proto"
	"rtm/repl"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestREADMECommandTable parses every command of the language table.
func TestREADMECommandTable(t *testing.T) {
	t.Parallel()
	cell := regexp.MustCompile("^\\| `([^|]+)` (?:·|\\|)")
	code := regexp.MustCompile("`([^`]+)`")
	optional := regexp.MustCompile(` ?\[[^\]]*\]`)
	n := 0
	section := readme(t)
	section = section[strings.Index(section, "## The command language"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	for _, line := range strings.Split(section, "\n") {
		if !cell.MatchString(line) {
			continue
		}
		first := strings.SplitN(strings.TrimPrefix(line, "| "), " | ", 2)[0]
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			// Optional parts ([TIMEOUT]) are left out; a synopsis (…, FILE)
			// is no example.
			cmd := optional.ReplaceAllString(m[1], "")
			if strings.ContainsAny(cmd, "…") || strings.Contains(cmd, "FILE") {
				continue
			}
			if _, err := repl.Parse([]byte(cmd)); err != nil {
				t.Errorf("README command %q does not parse: %v", m[1], err)
			}
			n++
		}
	}
	if n < 15 {
		t.Fatalf("found only %d commands in README's table; did its format change?", n)
	}
}

// fenced returns the body of the fenced block that contains marker.
func fenced(t *testing.T, marker string) string {
	t.Helper()
	s := readme(t)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README has no %q", marker)
	}
	start := strings.LastIndex(s[:i], "```")
	end := strings.Index(s[i:], "```")
	body := s[start : i+end]
	return body[strings.Index(body, "\n")+1:]
}

// TestREADMEBadScript runs the error example and compares its message.
func TestREADMEBadScript(t *testing.T) {
	t.Parallel()
	block := fenced(t, "/tmp/bad.rtm:2:")
	want := strings.TrimSpace(block[strings.Index(block, "rtm server demo:"):])
	dir := t.TempDir()
	script := filepath.Join(dir, "bad.rtm")
	os.WriteFile(script, []byte("C,10.1.1.0/24,192.168.1.1,eth0\nC,10.1.1.1/24,192.168.1.1,eth0\n"), 0o644)
	in := newInstance(t)
	r := runRTM(t, "", append([]string{"server", "--script", script, "--exit-at-eof"}, in.flags()...)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	got := strings.NewReplacer(script, "/tmp/bad.rtm", in.socket, "/run/user/1000/rtm/demo.sock",
		in.store, "/dev/shm/rtm.demo", "server "+in.name+":", "server demo:").Replace(strings.TrimSpace(r.stderr))
	if got != want {
		t.Fatalf("README says\n%s\nrtm says\n%s", want, got)
	}
}

// TestREADMEScenario runs the worked scenario and compares the report,
// but for times and pids.
func TestREADMEScenario(t *testing.T) {
	t.Parallel()
	block := fenced(t, "$ rtm test /tmp/late.rtm")
	body := block[strings.Index(block, "<<'EOF'\n")+8:]
	scenario := body[:strings.Index(body, "EOF\n")]
	want := block[strings.Index(block, "$ rtm test /tmp/late.rtm\n")+25:]
	want = want[:strings.Index(want, "$ rtm test scripts")]
	path := filepath.Join(t.TempDir(), "late.rtm")
	os.WriteFile(path, []byte(scenario), 0o644)
	r := runRTM(t, "", "test", path)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (the scenario's last line is meant to fail): %s", r.code, r.stderr)
	}
	vary := regexp.MustCompile(`\(\d+\.\d+s\)|pid \d+`)
	norm := func(s string) string {
		return strings.TrimSpace(vary.ReplaceAllString(strings.ReplaceAll(s, path, "/tmp/late.rtm"), "X"))
	}
	if g, w := norm(r.stdout+r.stderr), norm(want); g != w {
		t.Fatalf("README says\n%s\nrtm test says\n%s", w, g)
	}
}

// TestReplayThroughBinary drives replay end to end: --script (repeated,
// with nested source), piped stdin, --keep-going, and the exit statuses.
func TestReplayThroughBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("lib/macs.rtm", "C,00:1a:2b:3c:4d:5e,10.1.1.7\nsource more.rtm\n")
	write("lib/more.rtm", "C,aabb.ccdd.eeff,2001:db8::7\n")
	first := write("first.rtm", "C,10.1.1.0/24,192.168.1.1,eth0\nsource lib/macs.rtm\n")
	second := write("second.rtm", "expect count macs 2\nexpect mac aa:bb:cc:dd:ee:ff 2001:db8::7\n")
	bad := write("bad.rtm", "C,10.9.0.0/16,192.168.1.1,eth0\nD,10.77.0.0/16\nC,10.1.1.1/24,192.168.1.1,eth0\nC,10.8.0.0/16,192.168.1.1,eth0\n")

	in := newInstance(t)
	base := append([]string{"server", "--exit-at-eof"}, in.flags()...)
	r := runRTM(t, "show routes\nshow macs\n", append(base, "--script", first, "--script", second)...)
	if r.code != 0 {
		t.Fatalf("scripts and stdin: exit %d: %s", r.code, r.stderr)
	}
	assertLines(t, "piped show", sortedLines(r.stdout), []string{
		"00:1a:2b:3c:4d:5e 10.1.1.7", "10.1.1.0/24 via 192.168.1.1 dev eth0", "aa:bb:cc:dd:ee:ff 2001:db8::7"})

	// Stop at the first error: line 2; line 4 is never applied.
	r = runRTM(t, "", append(base, "--script", bad)...)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":2:") || strings.Contains(r.stderr, ":3:") {
		t.Fatalf("first error: exit %d, stderr %q", r.code, r.stderr)
	}
	// Keep going: both errors reported, the good lines applied, still exit 1.
	r = runRTM(t, "show routes\n", append(base, "--fresh", "--keep-going", "--script", bad)...)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":2:") || !strings.Contains(r.stderr, bad+":3:") {
		t.Fatalf("keep-going: exit %d, stderr %q", r.code, r.stderr)
	}
	if r = runRTM(t, "show routes\n", base...); !strings.Contains(r.stdout, "10.8.0.0/16") || !strings.Contains(r.stdout, "10.9.0.0/16") {
		t.Fatalf("keep-going did not apply the good lines: %q", r.stdout)
	}
	// Errors on piped stdin name <stdin> and the line.
	r = runRTM(t, "show routes\nbogus\n", base...)
	if r.code != 1 || !strings.Contains(r.stderr, "<stdin>:2:") {
		t.Fatalf("stdin error: exit %d, stderr %q", r.code, r.stderr)
	}
	// quit in a script ends the server cleanly.
	r = runRTM(t, "", append(append([]string{"server"}, in.flags()...), "--script", write("q.rtm", "quit\n"))...)
	if r.code != 0 {
		t.Fatalf("quit in a script: exit %d: %s", r.code, r.stderr)
	}
}

// shellBlock is a ```sh block of the README and what the text after it
// says it prints.
type shellBlock struct {
	line   int      // of the opening fence
	body   string   // the commands
	prints []string // `quoted` parts of a "prints ..." paragraph after it
}

func shellBlocks(t *testing.T) []shellBlock {
	t.Helper()
	lines := strings.Split(readme(t), "\n")
	var blocks []shellBlock
	quoted := regexp.MustCompile("`([^`]+)`")
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```sh" {
			continue
		}
		b := shellBlock{line: i + 1}
		j := i + 1
		for ; j < len(lines) && lines[j] != "```"; j++ {
			b.body += lines[j] + "\n"
		}
		// "prints `X`, `Y`, then `Z`." right after the block.
		k := j + 1
		for k < len(lines) && lines[k] == "" {
			k++
		}
		if k < len(lines) && strings.HasPrefix(lines[k], "prints ") {
			para := ""
			for ; k < len(lines) && lines[k] != ""; k++ {
				para += lines[k] + "\n"
			}
			for _, m := range quoted.FindAllStringSubmatch(para, -1) {
				b.prints = append(b.prints, m[1])
			}
		}
		blocks = append(blocks, b)
		i = j
	}
	return blocks
}

// inSandbox runs a shell script as a user at a terminal would, but in
// namespaces of its own: a private /dev/shm, /run/netns, /run/frr and
// runtime directory, so the README's instance, namespace and FRR names
// meet nothing on the machine, and a PID namespace, so every process the
// script leaves running is gone when it ends.
func inSandbox(t *testing.T, script, dir string) result {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the README's commands in namespaces of their own")
	}
	bin := filepath.Dir(rtmBin)
	wrapper := `set -e
mount -t tmpfs rtm-shm /dev/shm
mkdir -p /run/netns && mount -t tmpfs rtm-netns /run/netns
if [ -d /run/frr ]; then mount -t tmpfs rtm-frr /run/frr && chown frr: /run/frr; fi
cd "$1"
exec bash -e "$2"
`
	path := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--pid", "--fork", "--kill-child", "bash", "-c", wrapper, "sandbox", dir, path)
	// The stores go where a user's would: the sandbox's own /dev/shm, not
	// the tests' store directory.
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "XDG_RUNTIME_DIR="+dir, "HOME="+dir, "XDG_STATE_HOME="+dir, proto.StoreDirEnv+"=")
	cmd.Env = append(cmd.Env, goCaches()...)
	cmd.Dir = dir
	return runCmd(t, cmd, "", 2*time.Minute)
}

// goCaches is where the go command keeps its caches, as VAR=value: a
// sandbox keeps them where they are, since a cold one would make `go run`
// compile the world. Asked once, in one go command.
var goCaches = sync.OnceValue(func() []string {
	vars := []string{"GOCACHE", "GOMODCACHE", "GOPATH"}
	out, err := exec.Command("go", append([]string{"env"}, vars...)...).Output()
	values := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if err != nil || len(values) != len(vars) {
		return nil
	}
	var env []string
	for i, v := range vars {
		env = append(env, v+"="+values[i])
	}
	return env
})

// TestREADMEShellExamples runs every ```sh block of the README as
// written, each in a sandbox of its own: each must succeed, and print
// what the text after it says it prints. The first block's second line
// is this very test command; its first must start a server.
func TestREADMEShellExamples(t *testing.T) {
	t.Parallel()
	blocks := shellBlocks(t)
	if len(blocks) < 4 {
		t.Fatalf("found %d sh blocks in the README; did its format change?", len(blocks))
	}
	for _, b := range blocks[1:] {
		if strings.Contains(b.body, "go test") {
			continue // the development commands: what CI runs
		}
		if strings.Contains(b.body, "ip netns") {
			if _, err := exec.LookPath("ip"); err != nil {
				t.Skip("needs ip (iproute2) for the kernel bridge's example")
			}
		}
		t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) {
			if _, err := os.Stat("/usr/lib/frr/zebra"); err != nil && strings.Contains(b.body, "/usr/lib/frr/") {
				t.Skip("package main (rtm): the README's BGP example needs FRR, Debian's frr package:", err)
			}
			r := inSandbox(t, b.body, t.TempDir())
			if r.code != 0 {
				t.Fatalf("README line %d: exit %d\n%s\nstdout:\n%s\nstderr:\n%s", b.line, r.code, b.body, r.stdout, r.stderr)
			}
			for _, p := range b.prints {
				if !strings.Contains(r.stdout, p) {
					t.Errorf("README line %d says it prints %q; stdout:\n%s", b.line, p, r.stdout)
				}
			}
		})
	}
	// The first block: `go run . server` starts a server with a prompt
	// (stdin here is no terminal: it serves until it is stopped).
	first := strings.SplitN(blocks[0].body, "\n", 2)[0]
	cmdline, _, _ := strings.Cut(first, "#")
	if strings.TrimSpace(cmdline) != "go run . server" {
		t.Fatalf("the README's first command is %q", first)
	}
	wd, _ := os.Getwd()
	banner := filepath.Join(t.TempDir(), "banner")
	script := fmt.Sprintf("cd %q\n%s </dev/null 2>%q &\nfor i in $(seq 600); do grep -q 'rtm server default: socket' %q && exit 0; sleep 0.1; done\ncat %q; exit 1\n",
		wd, strings.TrimSpace(cmdline), banner, banner, banner)
	if r := inSandbox(t, script, t.TempDir()); r.code != 0 {
		t.Fatalf("%s did not start a server: %s%s", cmdline, r.stdout, r.stderr)
	}
}
