package client

// ReadCounts returns the frames c's callers read in their read turn, and
// those its background reader read.
func ReadCounts(c *Client) (own, background uint64) {
	return c.ownReads.Load(), c.bgReads.Load()
}
