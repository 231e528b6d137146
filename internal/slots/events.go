package slots

import (
	"time"

	"timeslots/internal/feed"
	"timeslots/models"
)

// WithFeed publishes every committed change to what slots offer on f
// (see package feed): bookings, cancellations and moves as one event per
// slot, generation and cleanup as one event per provider and batch, an
// update of a provider (its deactivation included) as one event. Events reach f's local
// subscribers before the change's method returns, so a reader on this
// replica sees its own writes; a feed made by feed.NewPostgres then sends
// them to the other replicas.
func WithFeed(f *feed.Feed) Option { return func(m *Manager) { m.feed = f } }

// publish hands events to the feed, if there is one.
func (m *Manager) publish(events ...feed.Event) {
	if m.feed != nil && len(events) > 0 {
		m.feed.Publish(events...)
	}
}

// slotEvent is the event of a change of kind to slot s, as s is after it.
func slotEvent(kind feed.Kind, s *models.TimeSlot) feed.Event {
	return feed.Event{Kind: kind, SlotID: s.ID, ProviderID: s.ProviderID, Start: s.StartTime.UTC(), End: s.EndTime.UTC(),
		Capacity: s.Capacity, Remaining: s.Remaining(), Version: s.Version}
}

// slotRange is what a bulk write did to one provider's slots: how many it
// wrote or deleted, from the earliest start to the latest end.
type slotRange struct {
	providerID int64
	start, end time.Time
	count      int
}

// rangeSet gathers slotRanges by provider, in the order providers first
// appear.
type rangeSet struct {
	ranges []slotRange
	at     map[int64]int
}

// add counts one slot of provider from start to end.
func (rs *rangeSet) add(provider int64, start, end time.Time) {
	rs.merge(slotRange{providerID: provider, start: start, end: end, count: 1})
}

// merge adds r's slots to its provider's range.
func (rs *rangeSet) merge(r slotRange) {
	if rs.at == nil {
		rs.at = map[int64]int{}
	}
	i, ok := rs.at[r.providerID]
	if !ok {
		rs.at[r.providerID] = len(rs.ranges)
		rs.ranges = append(rs.ranges, r)
		return
	}
	g := &rs.ranges[i]
	if r.start.Before(g.start) {
		g.start = r.start
	}
	if r.end.After(g.end) {
		g.end = r.end
	}
	g.count += r.count
}

// total answers the slots the ranges cover.
func total(ranges []slotRange) int {
	n := 0
	for _, r := range ranges {
		n += r.count
	}
	return n
}

// bulkEvents are the events of kind for ranges, one per provider.
func bulkEvents(kind feed.Kind, ranges []slotRange) []feed.Event {
	out := make([]feed.Event, 0, len(ranges))
	for _, r := range ranges {
		out = append(out, feed.Event{Kind: kind, ProviderID: r.providerID, Start: r.start.UTC(), End: r.end.UTC(), Count: r.count})
	}
	return out
}

// newSlotRanges answers the per-provider ranges of rows, all written.
func newSlotRanges(rows []newSlot) []slotRange {
	var rs rangeSet
	for i := range rows {
		rs.add(rows[i].ProviderID, rows[i].StartTime, rows[i].EndTime)
	}
	return rs.ranges
}
