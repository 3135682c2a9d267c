package csn

// SID returns the server ID of the CSNs the generator makes.
func (g *Generator) SID() uint16 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sid
}

// SetSID changes the server ID of the CSNs made from now on (a cluster
// member gets its Cluster No. when it joins). CSNs stay monotonic: the
// floor of times already returned is kept.
func (g *Generator) SetSID(sid uint16) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sid = sid
	g.last.SID = sid
}
