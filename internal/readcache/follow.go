package readcache

import "timeslots/internal/feed"

// Follow keeps the cache in step with the change feed until stop is
// called: each event drops the answers it may touch before the feed's
// Publish returns (so on the replica that made a change, before the
// mutation answers); REFETCH (the feed may have missed events) drops
// every answer; and while the feed's connection to the other replicas is
// lost the cache is off and empty, since their changes go unheard.
func (c *Cache) Follow(f *feed.Feed) (stop func()) {
	if c == nil || f == nil {
		return func() {}
	}
	stop = f.Observe(feed.Observer{Event: c.apply, Health: c.SetEnabled})
	c.SetEnabled(f.Healthy())
	return stop
}

// apply drops what one event may have made stale.
func (c *Cache) apply(e feed.Event) {
	switch {
	case e.Kind == feed.Refetch:
		c.Purge()
	case e.SlotID != 0:
		c.Invalidate(Change{Provider: e.ProviderID, From: e.Start, To: e.Start})
	default: // a bulk change or a provider's update: its provider (0: any) over its range (zero: all time)
		c.Invalidate(Change{Provider: e.ProviderID, From: e.Start, To: e.End})
	}
}
