package kernels

import "sync"

// Cache is a key-value store private to one worker rank and kept between
// tasks; kernels use it to reuse expensive values (a compiled template, a
// loaded table). It is safe for concurrent use by the rank's slots.
type Cache struct {
	mu sync.Mutex
	m  map[string]any
}

// Get returns the value stored under key.
func (c *Cache) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

// Put stores v under key.
func (c *Cache) Put(key string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]any)
	}
	c.m[key] = v
}

// GetOrPut returns the value under key, storing the result of mk first
// when there is none. mk runs with the cache locked.
func (c *Cache) GetOrPut(key string, mk func() any) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok {
		return v
	}
	if c.m == nil {
		c.m = make(map[string]any)
	}
	v := mk()
	c.m[key] = v
	return v
}
