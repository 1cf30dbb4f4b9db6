package circuit

import (
	"fmt"
	"io"
	"math"
	"slices"
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
	cregs map[string]creg
	defs  map[string]int // index in c.Defs
	c     *Circuit
	depth int // expression nesting
	cond  Cond
}

// creg is a classical register: its index in Circuit.Cregs and its first
// bit over all registers.
type creg struct{ index, start, size int }

// maxExprDepth bounds the nesting of parameter expressions.
const maxExprDepth = 200

type qreg struct{ start, size int }

// ParseQASM reads an OpenQASM 2.0 program (see the package documentation
// for the subset) and returns its circuit. Errors are *SyntaxError.
func ParseQASM(src string) (*Circuit, error) {
	p := &parser{lex: lexer{src: src, line: 1, col: 1}, regs: map[string]qreg{}, cregs: map[string]creg{},
		defs: map[string]int{}, c: New(0)}
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
		return p.barrier()
	case "gate":
		return p.definition()
	case "opaque":
		return p.unsupported(t, "%s", t.text)
	case "if":
		return p.conditional()
	}
	return p.quantumOp()
}

// quantumOp reads a gate application, measure or reset (the statements
// an if may guard).
func (p *parser) quantumOp() error {
	switch p.tok.text {
	case "measure":
		return p.measure()
	case "reset":
		return p.reset()
	}
	return p.application()
}

// conditional reads if (c == n) followed by a gate, measure or reset.
func (p *parser) conditional() error {
	if err := p.advance(); err != nil {
		return err
	}
	if err := p.expect("("); err != nil {
		return err
	}
	rt := p.tok
	r, err := p.classicalRegister()
	if err != nil {
		return err
	}
	if err := p.advance(); err != nil {
		return err
	}
	if err := p.expect("=="); err != nil {
		return err
	}
	vt := p.tok
	if vt.kind != tokNumber {
		return p.errorf(vt, "expected an integer, found %s", vt)
	}
	v, err := strconv.ParseUint(vt.text, 10, 64)
	if err != nil || r.size < 64 && v >= 1<<r.size {
		return p.errorf(vt, "value %s does not fit %s[%d]", vt.text, rt.text, r.size)
	}
	if err := p.advance(); err != nil {
		return err
	}
	if err := p.expect(")"); err != nil {
		return err
	}
	if p.tok.kind != tokIdent {
		return p.errorf(p.tok, "expected a gate, measure or reset, found %s", p.tok)
	}
	switch p.tok.text {
	case "if", "barrier", "gate", "opaque", "qreg", "creg", "include", "OPENQASM":
		return p.errorf(p.tok, "%s cannot be conditioned", p.tok.text)
	}
	p.cond = Cond{Reg: r.index + 1, Value: v}
	defer func() { p.cond = Cond{} }()
	return p.quantumOp()
}

// push appends ops made by one statement, under the current condition.
func (p *parser) push(t token, ops ...Op) error {
	if len(p.c.Ops)+len(ops) > MaxQASMOps {
		return p.errorf(t, "more than %d operations", MaxQASMOps)
	}
	for _, op := range ops {
		op.Cond = p.cond
		p.c.Ops = append(p.c.Ops, op)
	}
	return nil
}

// qubitsOf expands arguments into qubits (a whole register into each of
// its qubits).
func qubitsOf(args []argument) []int {
	var qs []int
	for _, a := range args {
		if a.index >= 0 {
			qs = append(qs, a.reg.start+a.index)
			continue
		}
		for i := range a.reg.size {
			qs = append(qs, a.reg.start+i)
		}
	}
	return qs
}

func (p *parser) barrier() error {
	t := p.tok
	if err := p.advance(); err != nil {
		return err
	}
	args, err := p.arguments()
	if err != nil {
		return err
	}
	qs := qubitsOf(args)
	if len(qs) > MaxQubits {
		return p.errorf(t, "barrier on more than %d qubits", MaxQubits)
	}
	ops := make([]Op, 0, len(qs))
	for i, q := range qs {
		if slices.Contains(qs[:i], q) {
			return p.errorf(t, "barrier on qubit %d twice", q)
		}
		op := Op{Gate: Barrier, Qubits: [3]int{q}}
		if i > 0 {
			op.Arg = 1
		}
		ops = append(ops, op)
	}
	if err := p.push(t, ops...); err != nil {
		return err
	}
	return p.expect(";")
}

// oneArgument reads the one qubit or register argument of statement t
// (reset, measure), the current token.
func (p *parser) oneArgument(t token) ([]argument, error) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	args, err := p.arguments()
	if err != nil {
		return nil, err
	}
	if len(args) != 1 {
		return nil, p.errorf(t, "%s takes one qubit or register, got %d", t.text, len(args))
	}
	return args, nil
}

// classicalRegister is the declared classical register the current token
// names.
func (p *parser) classicalRegister() (creg, error) {
	t := p.tok
	if t.kind != tokIdent {
		return creg{}, p.errorf(t, "expected a classical register, found %s", t)
	}
	r, ok := p.cregs[t.text]
	if !ok {
		return creg{}, p.errorf(t, "undeclared classical register %s", t.text)
	}
	return r, nil
}

func (p *parser) reset() error {
	t := p.tok
	args, err := p.oneArgument(t)
	if err != nil {
		return err
	}
	var ops []Op
	for _, q := range qubitsOf(args) {
		ops = append(ops, Op{Gate: Reset, Qubits: [3]int{q}})
	}
	if err := p.push(t, ops...); err != nil {
		return err
	}
	return p.expect(";")
}

// measure reads measure q[i] -> c[j]; or measure q -> c; (registers of
// one size).
func (p *parser) measure() error {
	t := p.tok
	args, err := p.oneArgument(t)
	if err != nil {
		return err
	}
	if err := p.expect("->"); err != nil {
		return err
	}
	ct := p.tok
	r, err := p.classicalRegister()
	if err != nil {
		return err
	}
	if err := p.advance(); err != nil {
		return err
	}
	bit := -1
	if p.tok.kind == tokPunct && p.tok.text == "[" {
		if err := p.advance(); err != nil {
			return err
		}
		it := p.tok
		i, err := p.integer()
		if err != nil {
			return err
		}
		if i >= r.size {
			return p.errorf(it, "index %d out of range for %s[%d]", i, ct.text, r.size)
		}
		bit = i
		if err := p.expect("]"); err != nil {
			return err
		}
	}
	a := args[0]
	var ops []Op
	switch {
	case a.index >= 0 && bit >= 0:
		ops = append(ops, Op{Gate: Measure, Qubits: [3]int{a.reg.start + a.index}, Arg: r.start + bit})
	case a.index < 0 && bit < 0:
		if a.reg.size != r.size {
			return p.errorf(ct, "register %s has size %d, %s %d", ct.text, r.size, a.tok.text, a.reg.size)
		}
		for i := range r.size {
			ops = append(ops, Op{Gate: Measure, Qubits: [3]int{a.reg.start + i}, Arg: r.start + i})
		}
	default:
		return p.errorf(ct, "measure a qubit into a bit, or a register into a register")
	}
	if err := p.push(t, ops...); err != nil {
		return err
	}
	return p.expect(";")
}

// definition reads gate NAME a, b { body }: a constant two-qubit gate
// whose body applies built-in or earlier defined gates to a and b.
func (p *parser) definition() error {
	t := p.tok
	if err := p.advance(); err != nil {
		return err
	}
	nt := p.tok
	if nt.kind != tokIdent {
		return p.errorf(nt, "expected a gate name, found %s", nt)
	}
	if _, ok := GateByName(nt.text); ok || nt.text == "measure" || nt.text == "reset" || nt.text == "barrier" {
		return p.unsupported(nt, "redefinition of the built-in gate %s", nt.text)
	}
	if _, dup := p.defs[nt.text]; dup {
		return p.errorf(nt, "gate %s defined twice", nt.text)
	}
	if len(p.c.Defs) >= MaxQubits {
		return p.errorf(nt, "more than %d gate definitions", MaxQubits)
	}
	if err := p.advance(); err != nil {
		return err
	}
	if p.tok.kind == tokPunct && p.tok.text == "(" {
		return p.unsupported(p.tok, "gate %s with parameters", nt.text)
	}
	var formals []string
	for {
		ft := p.tok
		if ft.kind != tokIdent {
			return p.errorf(ft, "expected a qubit argument name, found %s", ft)
		}
		if slices.Contains(formals, ft.text) {
			return p.errorf(ft, "argument %s twice", ft.text)
		}
		formals = append(formals, ft.text)
		if err := p.advance(); err != nil {
			return err
		}
		if p.tok.kind != tokPunct || p.tok.text != "," {
			break
		}
		if err := p.advance(); err != nil {
			return err
		}
	}
	if len(formals) != 2 {
		return p.unsupported(t, "gate %s on %d qubits (only two-qubit definitions)", nt.text, len(formals))
	}
	if err := p.expect("{"); err != nil {
		return err
	}
	var body []Op
	for !(p.tok.kind == tokPunct && p.tok.text == "}") {
		bt := p.tok
		if bt.kind != tokIdent {
			return p.errorf(bt, "expected a gate in the body of %s, found %s", nt.text, bt)
		}
		if bt.text == "barrier" {
			if err := p.advance(); err != nil {
				return err
			}
			for !(p.tok.kind == tokPunct && p.tok.text == ";") {
				if p.tok.kind == tokEOF {
					return p.errorf(p.tok, "expected \";\", found %s", p.tok)
				}
				if err := p.advance(); err != nil {
					return err
				}
			}
			if err := p.advance(); err != nil {
				return err
			}
			continue
		}
		ops, err := p.bodyOp(formals)
		if err != nil {
			return err
		}
		if len(body)+len(ops) > MaxDefBody {
			return p.errorf(bt, "body of %s longer than %d gates", nt.text, MaxDefBody)
		}
		body = append(body, ops...)
	}
	if err := p.advance(); err != nil {
		return err
	}
	p.defs[nt.text] = len(p.c.Defs)
	p.c.Defs = append(p.c.Defs, Def{Name: nt.text, Body: body})
	return nil
}

// bodyOp reads one gate application of a definition's body, its qubits
// named by formals, and returns its built-in ops (a defined gate is
// expanded).
func (p *parser) bodyOp(formals []string) ([]Op, error) {
	nameTok := p.tok
	g, params, err := p.gateAndParams()
	if err != nil {
		return nil, err
	}
	var qs []int
	for {
		at := p.tok
		i := slices.Index(formals, at.text)
		if at.kind != tokIdent || i < 0 {
			return nil, p.errorf(at, "expected one of the gate's arguments %s, found %s", strings.Join(formals, ", "), at)
		}
		qs = append(qs, i)
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokPunct || p.tok.text != "," {
			break
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if len(qs) != g.arity() {
		return nil, p.errorf(nameTok, "%s takes %d qubits, got %d", nameTok.text, g.arity(), len(qs))
	}
	if err := p.expect(";"); err != nil {
		return nil, err
	}
	if g.def >= 0 {
		var ops []Op
		for _, op := range p.c.Defs[g.def].Body {
			for j, q := range op.QubitList() {
				op.Qubits[j] = qs[q]
			}
			ops = append(ops, op)
		}
		return ops, nil
	}
	op, err := NewOp(g.gate, qs, params...)
	if err != nil {
		return nil, p.errorf(nameTok, "%s applied to one qubit twice", nameTok.text)
	}
	return []Op{op}, nil
}

// named is a gate found by name: a built-in, or a definition (def ≥ 0).
type named struct {
	gate Gate
	def  int
}

func (n named) arity() int {
	if n.def >= 0 {
		return 2
	}
	return n.gate.Arity()
}

// gateAndParams reads a gate name and its parenthesised parameters.
func (p *parser) gateAndParams() (named, []float64, error) {
	nameTok := p.tok
	g := named{def: -1}
	if i, ok := p.defs[nameTok.text]; ok {
		g = named{gate: Defined, def: i}
	} else if b, ok := GateByName(nameTok.text); ok {
		g.gate = b
	} else {
		return g, nil, p.unsupported(nameTok, "gate %s", nameTok.text)
	}
	if err := p.advance(); err != nil {
		return g, nil, err
	}
	var params []float64
	if p.tok.kind == tokPunct && p.tok.text == "(" {
		if err := p.advance(); err != nil {
			return g, nil, err
		}
		if !(p.tok.kind == tokPunct && p.tok.text == ")") {
			for {
				et := p.tok
				v, err := p.expr(0)
				if err != nil {
					return g, nil, err
				}
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return g, nil, p.errorf(et, "parameter is not a finite number")
				}
				params = append(params, v)
				if p.tok.kind == tokPunct && p.tok.text == "," {
					if err := p.advance(); err != nil {
						return g, nil, err
					}
					continue
				}
				break
			}
		}
		if err := p.expect(")"); err != nil {
			return g, nil, err
		}
	}
	if len(params) != g.gate.NumParams() {
		return g, nil, p.errorf(nameTok, "%s takes %d parameters, got %d", nameTok.text, g.gate.NumParams(), len(params))
	}
	return g, params, nil
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
	_, dupQ := p.regs[name.text]
	_, dupC := p.cregs[name.text]
	if dupQ || dupC {
		return p.errorf(name, "register %s declared twice", name.text)
	}
	if !quantum {
		if size > MaxCregSize {
			return p.unsupported(sizeTok, "classical register of %d bits (at most %d)", size, MaxCregSize)
		}
		if len(p.c.Cregs) >= MaxQubits {
			return p.errorf(name, "more than %d classical registers", MaxQubits)
		}
		p.cregs[name.text] = creg{index: len(p.c.Cregs), start: p.c.Clbits(), size: size}
		p.c.Cregs = append(p.c.Cregs, Register{Name: name.text, Size: size})
		return nil
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
	ng, params, err := p.gateAndParams()
	if err != nil {
		return err
	}
	g := ng.gate
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
		if ng.def >= 0 {
			op.Arg = ng.def
		}
		op.Cond = p.cond
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

// FormatQASM returns c as OpenQASM 2.0 text: its gate definitions, one
// quantum register q (a circuit of 0 qubits gets a register of 1, since
// OpenQASM has no empty registers), its classical registers, and its
// operations.
func FormatQASM(c *Circuit) string {
	var b strings.Builder
	n := max(c.Qubits, 1)
	b.WriteString("OPENQASM 2.0;\ninclude \"qelib1.inc\";\n")
	formals := []string{"a", "b"}
	for _, d := range c.Defs {
		fmt.Fprintf(&b, "gate %s a,b {", d.Name)
		for _, op := range d.Body {
			b.WriteByte(' ')
			writeGate(&b, op, c, func(q int) string { return formals[q] })
		}
		b.WriteString(" }\n")
	}
	qname := "q" // the quantum register, named apart from the classical ones
	for slices.ContainsFunc(c.Cregs, func(r Register) bool { return r.Name == qname }) {
		qname += "_"
	}
	fmt.Fprintf(&b, "qreg %s[%d];\n", qname, n)
	var bitNames []string
	for _, r := range c.Cregs {
		fmt.Fprintf(&b, "creg %s[%d];\n", r.Name, r.Size)
		for i := range r.Size {
			bitNames = append(bitNames, fmt.Sprintf("%s[%d]", r.Name, i))
		}
	}
	qubit := func(q int) string { return qname + "[" + strconv.Itoa(q) + "]" }
	for i, op := range c.Ops {
		if op.Gate == Barrier {
			if op.Arg == 1 && i > 0 && c.Ops[i-1].Gate == Barrier {
				continue // written with the barrier it continues
			}
			b.WriteString("barrier ")
			b.WriteString(qubit(op.Qubits[0]))
			for _, next := range c.Ops[i+1:] {
				if next.Gate != Barrier || next.Arg != 1 {
					break
				}
				b.WriteByte(',')
				b.WriteString(qubit(next.Qubits[0]))
			}
			b.WriteString(";\n")
			continue
		}
		if op.Cond.Set() && op.Cond.Reg <= len(c.Cregs) {
			fmt.Fprintf(&b, "if(%s==%d) ", c.Cregs[op.Cond.Reg-1].Name, op.Cond.Value)
		}
		if op.Gate == Measure {
			bit := "c?"
			if op.Arg >= 0 && op.Arg < len(bitNames) {
				bit = bitNames[op.Arg]
			}
			fmt.Fprintf(&b, "measure %s -> %s;", qubit(op.Qubits[0]), bit)
		} else {
			writeGate(&b, op, c, qubit)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// writeGate writes one gate application, its qubits named by name.
func writeGate(b *strings.Builder, op Op, c *Circuit, name func(int) string) {
	if op.Gate == Defined && op.Arg >= 0 && op.Arg < len(c.Defs) {
		b.WriteString(c.Defs[op.Arg].Name)
	} else {
		b.WriteString(op.Gate.String())
	}
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
		b.WriteString(name(q))
	}
	b.WriteByte(';')
}
