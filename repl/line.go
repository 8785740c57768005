package repl

// The lexical rules of a line, for programs that read the command
// language alongside Parse (the scenario runner finds its directives
// with them). They are the rules Parse itself applies.

import "bytes"

// CleanLine returns line with its comment removed and the white space
// around it trimmed: what Parse reads. A '#' starts a comment when it
// starts the line or follows white space, outside double quotes. An
// empty result is a blank or comment-only line. CleanLine returns a
// subslice of line; it does not allocate.
func CleanLine(line []byte) []byte {
	return trimSpace(stripComment(line))
}

// TrimBOM returns a file's first line without the UTF-8 byte-order mark
// some editors start a file with: like a CR before the newline, it is not
// part of the command.
func TrimBOM(line []byte) []byte { return bytes.TrimPrefix(line, utf8BOM) }

var utf8BOM = []byte("\ufeff")

// FirstWord splits line, after leading white space, at the first space
// or tab: the word (a command or directive name) and the rest, which
// starts with that space (nil if the line is one word). It does not
// remove comments; call CleanLine first.
func FirstWord(line []byte) (word string, rest []byte) {
	return firstWord(line)
}
