package topology

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// pos is a 1-based line and column in the topology file.
type pos struct{ line, col int }

// source locates the keys of a topology file, for error messages.
type source struct {
	file string
	keys map[string]pos // dotted key (toml.Key.String form) → first position
}

// errAt returns a *ConfigError for key, at the key's position when the file
// holds it, else at its closest enclosing table's.
func (s source) errAt(key, msg string) *ConfigError {
	e := &ConfigError{File: s.file, Key: key, Msg: msg}
	for k := key; k != ""; {
		if p, ok := s.keys[k]; ok {
			e.Line, e.Col = p.line, p.col
			break
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return e
}

// indexKeys maps every key of a TOML document to the position where it
// first appears: table headers, dotted keys (each prefix too) and the keys
// of inline tables. BurntSushi/toml keeps key positions private
// (BurntSushi/toml#462), so this small scanner recovers them. It runs only
// on text the TOML parser has accepted, and never fails: on anything it
// does not understand it skips to the next line.
func indexKeys(text string) map[string]pos {
	sc := keyScanner{s: text, line: 1, lineStart: 0, keys: make(map[string]pos)}
	sc.document()
	return sc.keys
}

type keyScanner struct {
	s         string
	i         int
	line      int
	lineStart int
	keys      map[string]pos
}

func (sc *keyScanner) pos() pos { return pos{sc.line, sc.i - sc.lineStart + 1} }

func (sc *keyScanner) peek(k int) byte {
	if sc.i+k < len(sc.s) {
		return sc.s[sc.i+k]
	}
	return 0
}

func (sc *keyScanner) advance() {
	if sc.i < len(sc.s) && sc.s[sc.i] == '\n' {
		sc.line++
		sc.lineStart = sc.i + 1
	}
	sc.i++
}

func (sc *keyScanner) record(path []string, p pos) {
	k := toml.Key(path).String()
	if _, ok := sc.keys[k]; !ok {
		sc.keys[k] = p
	}
}

// skipSpace skips blanks, and with newlines also line breaks and comments.
func (sc *keyScanner) skipSpace(newlines bool) {
	for sc.i < len(sc.s) {
		switch c := sc.s[sc.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			sc.advance()
		case c == '\n' && newlines:
			sc.advance()
		case c == '#' && newlines:
			for sc.i < len(sc.s) && sc.s[sc.i] != '\n' {
				sc.advance()
			}
		default:
			return
		}
	}
}

func (sc *keyScanner) skipLine() {
	for sc.i < len(sc.s) && sc.s[sc.i] != '\n' {
		sc.advance()
	}
}

func (sc *keyScanner) document() {
	var table []string
	for steps := 0; sc.i < len(sc.s) && steps <= len(sc.s); steps++ {
		sc.skipSpace(true)
		if sc.i >= len(sc.s) {
			return
		}
		start := sc.i
		switch sc.s[sc.i] {
		case '[':
			p := sc.pos()
			sc.advance()
			if sc.peek(0) == '[' {
				sc.advance()
			}
			sc.skipSpace(false)
			key, ok := sc.key()
			if !ok {
				sc.skipLine()
				continue
			}
			for n := 1; n <= len(key); n++ {
				sc.record(key[:n], p)
			}
			table = key
			sc.skipLine()
		default:
			sc.keyValue(table)
		}
		if sc.i == start { // no progress: give up on this line
			sc.skipLine()
		}
	}
}

// keyValue reads "key = value" under prefix, recording the key and, for an
// inline table value, its keys.
func (sc *keyScanner) keyValue(prefix []string) {
	p := sc.pos()
	key, ok := sc.key()
	if !ok {
		sc.skipLine()
		return
	}
	full := append(append([]string(nil), prefix...), key...)
	for n := len(prefix) + 1; n <= len(full); n++ {
		sc.record(full[:n], p)
	}
	sc.skipSpace(false)
	if sc.peek(0) != '=' {
		sc.skipLine()
		return
	}
	sc.advance()
	sc.skipSpace(false)
	sc.value(full, 0)
}

// key reads a dotted key (bare or quoted parts) and stops after it.
func (sc *keyScanner) key() ([]string, bool) {
	var parts []string
	for {
		sc.skipSpace(false)
		var part string
		switch c := sc.peek(0); {
		case c == '"':
			s, ok := sc.basicString()
			if !ok {
				return nil, false
			}
			part = s
		case c == '\'':
			s, ok := sc.literalString()
			if !ok {
				return nil, false
			}
			part = s
		case isBareKeyChar(c):
			start := sc.i
			for sc.i < len(sc.s) && isBareKeyChar(sc.s[sc.i]) {
				sc.advance()
			}
			part = sc.s[start:sc.i]
		default:
			return nil, false
		}
		parts = append(parts, part)
		sc.skipSpace(false)
		if sc.peek(0) != '.' {
			return parts, true
		}
		sc.advance()
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// basicString reads "…" (one line, with escapes) or """…""" and returns
// its text with the simple escapes undone (enough for key names).
func (sc *keyScanner) basicString() (string, bool) {
	if strings.HasPrefix(sc.s[sc.i:], `"""`) {
		sc.i += 3
		for sc.i < len(sc.s) {
			if sc.s[sc.i] == '\\' {
				sc.advance()
				sc.advance()
				continue
			}
			if strings.HasPrefix(sc.s[sc.i:], `"""`) {
				sc.i += 3
				for sc.peek(0) == '"' { // up to two more quotes belong to the string
					sc.i++
				}
				return "", true
			}
			sc.advance()
		}
		return "", false
	}
	sc.advance()
	var b strings.Builder
	for sc.i < len(sc.s) && sc.s[sc.i] != '\n' {
		c := sc.s[sc.i]
		switch c {
		case '"':
			sc.advance()
			return b.String(), true
		case '\\':
			sc.advance()
			if sc.i < len(sc.s) {
				switch e := sc.s[sc.i]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(e)
				}
				sc.advance()
			}
		default:
			b.WriteByte(c)
			sc.advance()
		}
	}
	return "", false
}

// literalString reads a literal string, single-line or multi-line.
func (sc *keyScanner) literalString() (string, bool) {
	if strings.HasPrefix(sc.s[sc.i:], `'''`) {
		sc.i += 3
		for sc.i < len(sc.s) {
			if strings.HasPrefix(sc.s[sc.i:], `'''`) {
				sc.i += 3
				for sc.peek(0) == '\'' {
					sc.i++
				}
				return "", true
			}
			sc.advance()
		}
		return "", false
	}
	sc.advance()
	start := sc.i
	for sc.i < len(sc.s) && sc.s[sc.i] != '\n' {
		if sc.s[sc.i] == '\'' {
			s := sc.s[start:sc.i]
			sc.advance()
			return s, true
		}
		sc.advance()
	}
	return "", false
}

// value skips one value; an inline table's keys are recorded under path.
func (sc *keyScanner) value(path []string, depth int) {
	if depth > 64 {
		sc.skipLine()
		return
	}
	switch c := sc.peek(0); c {
	case '"':
		sc.basicString()
	case '\'':
		sc.literalString()
	case '[':
		sc.advance()
		for sc.i < len(sc.s) {
			sc.skipSpace(true)
			switch sc.peek(0) {
			case ']':
				sc.advance()
				return
			case ',':
				sc.advance()
			case 0:
				return
			default:
				start := sc.i
				sc.value(path, depth+1)
				if sc.i == start {
					sc.advance()
				}
			}
		}
	case '{':
		sc.advance()
		for sc.i < len(sc.s) {
			sc.skipSpace(true)
			switch sc.peek(0) {
			case '}':
				sc.advance()
				return
			case ',':
				sc.advance()
			case 0:
				return
			default:
				start := sc.i
				sc.keyValue(path)
				if sc.i == start {
					sc.advance()
				}
			}
		}
	default:
		for sc.i < len(sc.s) {
			switch sc.s[sc.i] {
			case ',', ']', '}', '\n', '#':
				return
			}
			sc.advance()
		}
	}
}
