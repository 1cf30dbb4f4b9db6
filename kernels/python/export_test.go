package python

// Warming reports whether p has an executor or is starting one.
func (p *Pool) Warming() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starting > 0 || len(p.execs) > 0
}
