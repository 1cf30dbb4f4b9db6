package circuit

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxQASMOps bounds the operations ParseQASM produces (broadcasting can
// turn a short statement into many).
const MaxQASMOps = 1 << 20

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokIdent
	tokNumber
	tokString
	tokPunct // one of ( ) [ ] { } , ; + - * / ^ and -> ==
)

type token struct {
	kind      tokKind
	text      string
	line, col int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

// lexer splits OpenQASM source into tokens, tracking lines and columns.
type lexer struct {
	src       string
	pos       int
	line, col int
}

func (l *lexer) errorf(line, col int, format string, a ...any) error {
	return &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(format, a...)}
}

func (l *lexer) advance(n int) {
	for range n {
		if l.src[l.pos] == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
		l.pos++
	}
}

func (l *lexer) next() (token, error) {
	// Skip white space and // comments.
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			l.advance(1)
			continue
		}
		if strings.HasPrefix(l.src[l.pos:], "//") {
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.advance(1)
			}
			continue
		}
		break
	}
	t := token{line: l.line, col: l.col}
	if l.pos >= len(l.src) {
		return t, nil
	}
	c := l.src[l.pos]
	start := l.pos
	switch {
	case isLetter(c):
		n := 1
		for start+n < len(l.src) && (isLetter(l.src[start+n]) || isDigit(l.src[start+n])) {
			n++
		}
		t.kind, t.text = tokIdent, l.src[start:start+n]
		l.advance(n)
	case isDigit(c) || c == '.' && start+1 < len(l.src) && isDigit(l.src[start+1]):
		n := 0
		for start+n < len(l.src) && isDigit(l.src[start+n]) {
			n++
		}
		if start+n < len(l.src) && l.src[start+n] == '.' {
			n++
			for start+n < len(l.src) && isDigit(l.src[start+n]) {
				n++
			}
		}
		if start+n < len(l.src) && (l.src[start+n] == 'e' || l.src[start+n] == 'E') {
			m := n + 1
			if start+m < len(l.src) && (l.src[start+m] == '+' || l.src[start+m] == '-') {
				m++
			}
			if start+m < len(l.src) && isDigit(l.src[start+m]) {
				for start+m < len(l.src) && isDigit(l.src[start+m]) {
					m++
				}
				n = m
			}
		}
		t.kind, t.text = tokNumber, l.src[start:start+n]
		l.advance(n)
	case c == '"':
		end := strings.IndexAny(l.src[start+1:], "\"\n")
		if end < 0 || l.src[start+1+end] != '"' {
			return t, l.errorf(t.line, t.col, "unterminated string")
		}
		t.kind, t.text = tokString, l.src[start+1:start+1+end]
		l.advance(end + 2)
	case strings.HasPrefix(l.src[start:], "->") || strings.HasPrefix(l.src[start:], "=="):
		t.kind, t.text = tokPunct, l.src[start:start+2]
		l.advance(2)
	case strings.IndexByte("()[]{},;+-*/^", c) >= 0:
		t.kind, t.text = tokPunct, l.src[start:start+1]
		l.advance(1)
	default:
		return t, l.errorf(t.line, t.col, "unexpected character %q", rune(c))
	}
	return t, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// parser reads OpenQASM 2.0 statements.
type parser struct {
	lex   lexer
	tok   token // current token
	regs  map[string]qreg
	c     *Circuit
	depth int // expression nesting
}

// maxExprDepth bounds the nesting of parameter expressions.
const maxExprDepth = 200

type qreg struct{ start, size int }

// ParseQASM reads an OpenQASM 2.0 program (see the package documentation
// for the subset) and returns its circuit. Errors are *SyntaxError.
func ParseQASM(src string) (*Circuit, error) {
	p := &parser{lex: lexer{src: src, line: 1, col: 1}, regs: map[string]qreg{}, c: New(0)}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if err := p.program(); err != nil {
		return nil, err
	}
	return p.c, nil
}

// ReadQASM reads all of r and parses it with ParseQASM.
func ReadQASM(r io.Reader) (*Circuit, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return ParseQASM(string(b))
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errorf(t token, format string, a ...any) error {
	return &SyntaxError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) unsupported(t token, format string, a ...any) error {
	return &SyntaxError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, a...), Err: ErrUnsupported}
}

// expect consumes the punctuation text or fails.
func (p *parser) expect(text string) error {
	if p.tok.kind != tokPunct || p.tok.text != text {
		return p.errorf(p.tok, "expected %q, found %s", text, p.tok)
	}
	return p.advance()
}

func (p *parser) program() error {
	if p.tok.kind == tokIdent && p.tok.text == "OPENQASM" {
		if err := p.advance(); err != nil {
			return err
		}
		if p.tok.kind != tokNumber {
			return p.errorf(p.tok, "expected a version number, found %s", p.tok)
		}
		if p.tok.text != "2.0" && p.tok.text != "2" {
			return p.unsupported(p.tok, "OpenQASM version %s", p.tok.text)
		}
		if err := p.advance(); err != nil {
			return err
		}
		if err := p.expect(";"); err != nil {
			return err
		}
	}
	for p.tok.kind != tokEOF {
		if err := p.statement(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) statement() error {
	t := p.tok
	if t.kind != tokIdent {
		return p.errorf(t, "expected a statement, found %s", t)
	}
	switch t.text {
	case "OPENQASM":
		return p.errorf(t, "OPENQASM must be the first statement")
	case "include":
		if err := p.advance(); err != nil {
			return err
		}
		if p.tok.kind != tokString {
			return p.errorf(p.tok, "expected a file name, found %s", p.tok)
		}
		if p.tok.text != "qelib1.inc" {
			return p.unsupported(p.tok, "include %q (only qelib1.inc)", p.tok.text)
		}
		if err := p.advance(); err != nil {
			return err
		}
		return p.expect(";")
	case "qreg", "creg":
		return p.register(t.text == "qreg")
	case "barrier":
		if err := p.advance(); err != nil {
			return err
		}
		if _, err := p.arguments(); err != nil {
			return err
		}
		return p.expect(";")
	case "gate", "opaque", "measure", "reset", "if":
		return p.unsupported(t, "%s", t.text)
	}
	return p.application()
}

func (p *parser) register(quantum bool) error {
	if err := p.advance(); err != nil {
		return err
	}
	name := p.tok
	if name.kind != tokIdent {
		return p.errorf(name, "expected a register name, found %s", name)
	}
	if err := p.advance(); err != nil {
		return err
	}
	if err := p.expect("["); err != nil {
		return err
	}
	sizeTok := p.tok
	size, err := p.integer()
	if err != nil {
		return err
	}
	if size < 1 {
		return p.errorf(sizeTok, "register size %d", size)
	}
	if err := p.expect("]"); err != nil {
		return err
	}
	if err := p.expect(";"); err != nil {
		return err
	}
	if !quantum {
		return nil
	}
	if _, dup := p.regs[name.text]; dup {
		return p.errorf(name, "register %s declared twice", name.text)
	}
	if p.c.Qubits+size > MaxQubits {
		return p.errorf(sizeTok, "more than %d qubits", MaxQubits)
	}
	p.regs[name.text] = qreg{start: p.c.Qubits, size: size}
	p.c.Qubits += size
	return nil
}

func (p *parser) integer() (int, error) {
	t := p.tok
	if t.kind != tokNumber {
		return 0, p.errorf(t, "expected an integer, found %s", t)
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n > MaxQubits*MaxQubits {
		return 0, p.errorf(t, "bad integer %s", t.text)
	}
	return n, p.advance()
}

// argument is a whole register (index < 0) or one qubit of it.
type argument struct {
	tok   token
	reg   qreg
	index int
}

func (p *parser) arguments() ([]argument, error) {
	var args []argument
	for {
		t := p.tok
		if t.kind != tokIdent {
			return nil, p.errorf(t, "expected a qubit register, found %s", t)
		}
		reg, ok := p.regs[t.text]
		if !ok {
			return nil, p.errorf(t, "undeclared quantum register %s", t.text)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		a := argument{tok: t, reg: reg, index: -1}
		if p.tok.kind == tokPunct && p.tok.text == "[" {
			if err := p.advance(); err != nil {
				return nil, err
			}
			it := p.tok
			i, err := p.integer()
			if err != nil {
				return nil, err
			}
			if i >= reg.size {
				return nil, p.errorf(it, "index %d out of range for %s[%d]", i, t.text, reg.size)
			}
			a.index = i
			if err := p.expect("]"); err != nil {
				return nil, err
			}
		}
		args = append(args, a)
		if p.tok.kind != tokPunct || p.tok.text != "," {
			return args, nil
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
}

func (p *parser) application() error {
	nameTok := p.tok
	g, ok := GateByName(nameTok.text)
	if !ok {
		return p.unsupported(nameTok, "gate %s", nameTok.text)
	}
	if err := p.advance(); err != nil {
		return err
	}
	var params []float64
	if p.tok.kind == tokPunct && p.tok.text == "(" {
		if err := p.advance(); err != nil {
			return err
		}
		if !(p.tok.kind == tokPunct && p.tok.text == ")") {
			for {
				et := p.tok
				v, err := p.expr(0)
				if err != nil {
					return err
				}
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return p.errorf(et, "parameter is not a finite number")
				}
				params = append(params, v)
				if p.tok.kind == tokPunct && p.tok.text == "," {
					if err := p.advance(); err != nil {
						return err
					}
					continue
				}
				break
			}
		}
		if err := p.expect(")"); err != nil {
			return err
		}
	}
	if len(params) != g.NumParams() {
		return p.errorf(nameTok, "%s takes %d parameters, got %d", nameTok.text, g.NumParams(), len(params))
	}
	args, err := p.arguments()
	if err != nil {
		return err
	}
	if len(args) != g.Arity() {
		return p.errorf(nameTok, "%s takes %d qubits, got %d", nameTok.text, g.Arity(), len(args))
	}
	// Broadcasting: whole registers must agree in size; the gate repeats
	// once per index.
	reps, whole := 1, false
	for _, a := range args {
		if a.index >= 0 {
			continue
		}
		if whole && a.reg.size != reps {
			return p.errorf(a.tok, "register %s has size %d, others %d", a.tok.text, a.reg.size, reps)
		}
		reps, whole = a.reg.size, true
	}
	if len(p.c.Ops)+reps > MaxQASMOps {
		return p.errorf(nameTok, "more than %d operations", MaxQASMOps)
	}
	qubits := make([]int, len(args))
	for r := range reps {
		for i, a := range args {
			if a.index >= 0 {
				qubits[i] = a.reg.start + a.index
			} else {
				qubits[i] = a.reg.start + r
			}
		}
		op, err := NewOp(g, qubits, params...)
		if err != nil {
			return p.errorf(nameTok, "%s applied to one qubit twice", nameTok.text)
		}
		p.c.Ops = append(p.c.Ops, op)
	}
	return p.expect(";")
}

// Operator binding powers for expr.
func binaryPower(op string) (left, right int) {
	switch op {
	case "+", "-":
		return 1, 2
	case "*", "/":
		return 3, 4
	case "^":
		return 6, 5 // right-associative, above unary minus
	}
	return 0, 0
}

// expr parses an expression whose operators bind tighter than minPower.
func (p *parser) expr(minPower int) (float64, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxExprDepth {
		return 0, p.errorf(p.tok, "parameter expression nested too deeply")
	}
	lhs, err := p.unary()
	if err != nil {
		return 0, err
	}
	for p.tok.kind == tokPunct {
		op := p.tok.text
		l, r := binaryPower(op)
		if l == 0 || l <= minPower {
			break
		}
		if err := p.advance(); err != nil {
			return 0, err
		}
		rhs, err := p.expr(r - 1)
		if err != nil {
			return 0, err
		}
		switch op {
		case "+":
			lhs += rhs
		case "-":
			lhs -= rhs
		case "*":
			lhs *= rhs
		case "/":
			lhs /= rhs
		case "^":
			lhs = math.Pow(lhs, rhs)
		}
	}
	return lhs, nil
}

func (p *parser) unary() (float64, error) {
	if p.tok.kind == tokPunct && (p.tok.text == "-" || p.tok.text == "+") {
		neg := p.tok.text == "-"
		if err := p.advance(); err != nil {
			return 0, err
		}
		v, err := p.expr(4) // binds tighter than * and /, looser than ^
		if neg {
			v = -v
		}
		return v, err
	}
	return p.primary()
}

// function returns the OpenQASM 2.0 unary function called name.
func function(name string) (func(float64) float64, bool) {
	switch name {
	case "sin":
		return math.Sin, true
	case "cos":
		return math.Cos, true
	case "tan":
		return math.Tan, true
	case "exp":
		return math.Exp, true
	case "ln":
		return math.Log, true
	case "sqrt":
		return math.Sqrt, true
	}
	return nil, false
}

func (p *parser) primary() (float64, error) {
	t := p.tok
	switch t.kind {
	case tokNumber:
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil && !isRangeErr(err) {
			return 0, p.errorf(t, "bad number %s", t.text)
		}
		return v, p.advance()
	case tokIdent:
		if t.text == "pi" {
			return math.Pi, p.advance()
		}
		f, ok := function(t.text)
		if !ok {
			return 0, p.errorf(t, "unknown identifier %s in a parameter", t.text)
		}
		if err := p.advance(); err != nil {
			return 0, err
		}
		if err := p.expect("("); err != nil {
			return 0, err
		}
		v, err := p.expr(0)
		if err != nil {
			return 0, err
		}
		return f(v), p.expect(")")
	case tokPunct:
		if t.text == "(" {
			if err := p.advance(); err != nil {
				return 0, err
			}
			v, err := p.expr(0)
			if err != nil {
				return 0, err
			}
			return v, p.expect(")")
		}
	}
	return 0, p.errorf(t, "expected a parameter expression, found %s", t)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// WriteQASM writes c as OpenQASM 2.0 with one register q.
func WriteQASM(w io.Writer, c *Circuit) error {
	_, err := io.WriteString(w, FormatQASM(c))
	return err
}

// FormatQASM returns c as OpenQASM 2.0 text with one register q (a
// circuit of 0 qubits gets a register of 1, since OpenQASM has no empty
// registers).
func FormatQASM(c *Circuit) string {
	var b strings.Builder
	n := max(c.Qubits, 1)
	fmt.Fprintf(&b, "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[%d];\n", n)
	for _, op := range c.Ops {
		b.WriteString(op.Gate.String())
		if np := op.Gate.NumParams(); np > 0 {
			b.WriteByte('(')
			for i, v := range op.Params[:np] {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
			b.WriteByte(')')
		}
		for i, q := range op.QubitList() {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "q[%d]", q)
		}
		b.WriteString(";\n")
	}
	return b.String()
}
