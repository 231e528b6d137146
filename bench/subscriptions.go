package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"timeslots/internal/gqlws"
)

// subscriptionFigure is what the subscriptions phase measured: the
// latency from a booking's request to each subscriber's receipt of its
// change, with every subscriber on the booking's server and on another
// server of the same database, and the changes a server fans out per
// second under a burst of concurrent bookings.
type subscriptionFigure struct {
	Subscribers, Bookings int
	Local, Remote         latencies
	// BookingP50 is the booking requests' own p50 (request to answer), for
	// scale.
	BookingP50 time.Duration
	// Burst: BurstBookings booked by BurstConns clients at once; every
	// subscriber received every change; Fanout is the changes received by
	// all subscribers per second, from the first request to the last
	// receipt.
	BurstBookings, BurstConns int
	BurstWall                 time.Duration
	Fanout                    float64
}

type latencies struct{ P50, P99, Max time.Duration }

func latenciesOf(ds []time.Duration) latencies {
	slices.Sort(ds)
	if len(ds) == 0 {
		return latencies{}
	}
	return latencies{P50: quantile(ds, 0.50), P99: quantile(ds, 0.99), Max: ds[len(ds)-1]}
}

func (f subscriptionFigure) line() string {
	return fmt.Sprintf("   %d subscribers, %d bookings one at a time: same server p50 %s p99 %s; other server p50 %s p99 %s (booking itself p50 %s); burst of %d bookings by %d clients: %s changes/s fanned out",
		f.Subscribers, f.Bookings, ms(f.Local.P50), ms(f.Local.P99), ms(f.Remote.P50), ms(f.Remote.P99), ms(f.BookingP50),
		f.BurstBookings, f.BurstConns, rate(f.Fanout))
}

// subscribers are n graphql-transport-ws clients of one server, each with
// one slotsChanged subscription to one provider. Each records when it
// received each booked slot's change.
type subscribers struct {
	conns []*gqlws.Conn
	mu    sync.Mutex
	got   map[int64][]time.Time // slot id → receipt times
	errs  []error
	wg    sync.WaitGroup
	more  chan struct{} // a receipt was recorded
}

func subscribeAll(ctx context.Context, base string, n int, provider int64) (*subscribers, error) {
	s := &subscribers{got: map[int64][]time.Time{}, more: make(chan struct{}, 1)}
	url := "ws" + strings.TrimPrefix(base, "http") + "/graphql"
	query := `subscription($p: ID!) { slotsChanged(filter: {providerId: $p}) { kind slot { id remaining } } }`
	for i := range n {
		c, _, err := gqlws.Dial(ctx, url, nil)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		s.conns = append(s.conns, c)
		if err := c.Init(ctx, nil); err != nil {
			s.close()
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		if err := c.Subscribe(ctx, "1", query, map[string]any{"p": provider}); err != nil {
			s.close()
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		s.wg.Add(1)
		go s.read(ctx, c)
	}
	return s, nil
}

// read records the receipt of every BOOKED change until the connection
// ends.
func (s *subscribers) read(ctx context.Context, c *gqlws.Conn) {
	defer s.wg.Done()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return
		}
		at := time.Now()
		var p struct {
			Data struct {
				SlotsChanged struct {
					Kind string
					Slot *struct{ ID string }
				}
			}
			Errors []json.RawMessage
		}
		if m.Type != "next" || json.Unmarshal(m.Payload, &p) != nil || len(p.Errors) > 0 {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("subscriber got %s %s", m.Type, m.Payload))
			s.mu.Unlock()
			continue
		}
		ch := p.Data.SlotsChanged
		if ch.Kind != "BOOKED" || ch.Slot == nil {
			continue
		}
		var id int64
		fmt.Sscan(ch.Slot.ID, &id)
		s.mu.Lock()
		s.got[id] = append(s.got[id], at)
		s.mu.Unlock()
		select {
		case s.more <- struct{}{}:
		default:
		}
	}
}

// wait waits until every subscriber received the change of each slot.
func (s *subscribers) wait(ctx context.Context, slots []int64) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		s.mu.Lock()
		done := true
		for _, id := range slots {
			if len(s.got[id]) < len(s.conns) {
				done = false
				break
			}
		}
		errs := len(s.errs)
		s.mu.Unlock()
		if errs > 0 {
			return s.errs[0]
		}
		if done {
			return nil
		}
		select {
		case <-s.more:
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			got := 0
			for _, id := range slots {
				got += len(s.got[id])
			}
			return fmt.Errorf("%d of %d subscribers' receipts of %d changes came: %w", got, len(s.conns)*len(slots), len(slots), ctx.Err())
		}
	}
}

func (s *subscribers) receipts(id int64) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got[id])
}

func (s *subscribers) close() {
	for _, c := range s.conns {
		_ = c.CloseNow()
	}
	s.wg.Wait()
}

// measureSubscriptions books slots of one provider while n clients are
// subscribed to its changes: first on the booking's server a, then on a
// second server over the same database (the change crosses through
// PostgreSQL's NOTIFY), one booking at a time, each timed from its
// request to every receipt; then a burst of concurrent bookings, whose
// changes every subscriber must receive.
func measureSubscriptions(ctx context.Context, b *benchDB, a *server, bin string, o *options) (subscriptionFigure, error) {
	fig := subscriptionFigure{Subscribers: o.subscribers, Bookings: o.subBookings, BurstBookings: o.subBurst, BurstConns: min(o.conns, 16)}
	const warmup = 2 // untimed bookings before each timed series
	need := 2*(warmup+fig.Bookings) + fig.BurstBookings
	var provider int64
	if err := b.pool.QueryRow(ctx, `SELECT provider_id FROM time_slots WHERE booked_count = 0 AND start_time > now() + interval '1 day'
		GROUP BY provider_id HAVING count(*) >= $1 ORDER BY provider_id LIMIT 1`, need).Scan(&provider); err != nil {
		return fig, fmt.Errorf("a provider with %d free slots: %w", need, err)
	}
	var ids []int64
	rows, err := b.pool.Query(ctx, `SELECT id FROM time_slots WHERE provider_id = $1 AND booked_count = 0 AND start_time > now() + interval '1 day'
		ORDER BY id LIMIT $2`, provider, need)
	if err != nil {
		return fig, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fig, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return fig, err
	}
	other, err := startServer(ctx, bin, b.url, o.serverEnv...)
	if err != nil {
		return fig, err
	}
	defer other.stop()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var bookingTimes []time.Duration
	// oneAtATime books slots one after the other, each once every
	// subscriber received the previous one's change, and answers the
	// latencies from each booking's request to each receipt.
	oneAtATime := func(subs *subscribers, slots []int64) (latencies, error) {
		var ds []time.Duration
		for i, id := range slots {
			sent := time.Now()
			code, err := bookOnce(ctx, client, a.base, id, fmt.Sprint("sub-", id))
			if err == nil && code != "" {
				err = fmt.Errorf("booking %d: %s", i, code)
			}
			if err != nil {
				return latencies{}, err
			}
			bookingTimes = append(bookingTimes, time.Since(sent))
			if err := subs.wait(ctx, []int64{id}); err != nil {
				return latencies{}, err
			}
			for _, at := range subs.receipts(id) {
				ds = append(ds, at.Sub(sent))
			}
		}
		return latenciesOf(ds), nil
	}

	for _, step := range []struct {
		srv   *server
		slots []int64
		into  *latencies
	}{{a, ids[:warmup+fig.Bookings], &fig.Local}, {other, ids[warmup+fig.Bookings : 2*(warmup+fig.Bookings)], &fig.Remote}} {
		subs, err := subscribeAll(ctx, step.srv.base, fig.Subscribers, provider)
		if err != nil {
			return fig, err
		}
		if err := waitActive(ctx, step.srv, fig.Subscribers); err != nil {
			subs.close()
			return fig, err
		}
		if _, err = oneAtATime(subs, step.slots[:warmup]); err == nil {
			*step.into, err = oneAtATime(subs, step.slots[warmup:])
		}
		if err == nil && step.srv == a {
			// The burst, with the subscribers on the booking's server.
			burst := ids[2*(warmup+fig.Bookings):]
			start := time.Now()
			var wg sync.WaitGroup
			errc := make(chan error, len(burst))
			next := make(chan int64, len(burst))
			for _, id := range burst {
				next <- id
			}
			close(next)
			for range fig.BurstConns {
				wg.Go(func() {
					for id := range next {
						if code, err := bookOnce(ctx, client, a.base, id, fmt.Sprint("burst-", id)); err != nil || code != "" {
							errc <- fmt.Errorf("burst booking of slot %d: %v %s", id, err, code)
						}
					}
				})
			}
			wg.Wait()
			close(errc)
			for e := range errc {
				err = e
			}
			if err == nil {
				err = subs.wait(ctx, burst)
			}
			if err == nil {
				last := start
				for _, id := range burst {
					for _, at := range subs.receipts(id) {
						if at.After(last) {
							last = at
						}
					}
				}
				fig.BurstWall = last.Sub(start)
				fig.Fanout = float64(len(burst)*fig.Subscribers) / fig.BurstWall.Seconds()
			}
		}
		subs.close()
		if err != nil {
			return fig, err
		}
	}
	slices.Sort(bookingTimes)
	fig.BookingP50 = quantile(bookingTimes, 0.5)
	return fig, nil
}

// waitActive waits until srv's /metrics count n running subscriptions.
func waitActive(ctx context.Context, srv *server, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/metrics", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "timeslots_subscriptions_active "); ok {
				var got float64
				fmt.Sscan(v, &got)
				if int(got) >= n {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d subscriptions never all started", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
