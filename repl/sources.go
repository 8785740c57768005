package repl

import (
	"fmt"
	"os"
	"strings"
)

// Sources is the chain of script files being read, innermost last: the
// interpreter's, and the scenario runner's. It refuses a file already in
// the chain, one that sources itself directly or not, and names the
// cycle. Files are told apart by identity, not by name, so a cycle
// through another spelling of a path is still one.
type Sources struct {
	files []sourceFile
}

type sourceFile struct {
	name string
	info os.FileInfo
}

// Open opens path as the innermost file of the chain; Pop ends it.
func (c *Sources) Open(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && info.IsDir() {
		err = fmt.Errorf("%s is a directory; want a script file", path)
	}
	for i := 0; err == nil && i < len(c.files); i++ {
		if os.SameFile(c.files[i].info, info) {
			chain := make([]string, 0, len(c.files)-i+1)
			for _, g := range c.files[i:] {
				chain = append(chain, g.name)
			}
			err = fmt.Errorf("%s: cycle: %s -> %s", path, strings.Join(chain, " -> "), path)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	c.files = append(c.files, sourceFile{name: path, info: info})
	return f, nil
}

// Pop ends the innermost file.
func (c *Sources) Pop() { c.files = c.files[:len(c.files)-1] }

// Clone returns a chain that starts as c and goes its own way.
func (c *Sources) Clone() Sources {
	return Sources{files: append([]sourceFile(nil), c.files...)}
}
