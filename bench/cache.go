package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"timeslots/models"
)

// timeSlotsWithProviderQuery is timeSlotsQuery with the provider a
// frontend shows beside each slot: the executor's shape, which the
// slot-page fast path leaves to gqlgen.
const timeSlotsWithProviderQuery = `query SlotsWithProvider($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount provider { id name } } } pageInfo { hasNextPage endCursor } } }`

// graphqlProviderRead is the read with its provider; its check counts
// slots by their providerId, since each node has two ids.
var graphqlProviderRead = readAPI{
	endpoint: endpoint{Name: "GraphQL timeSlots with provider { id name }", Method: http.MethodPost, ContentType: "application/json",
		Check: answerCheck{Status: http.StatusOK, Rules: []bodyRule{
			noGraphQLErrors,
			{What: "slots", Text: `"providerId":`, Min: pageSize, Max: pageSize},
		}}},
	request: func(pid int64, w window) request {
		return request{Path: "/graphql", Body: graphqlBody(timeSlotsWithProviderQuery, struct {
			P string      `json:"p"`
			S models.Date `json:"s"`
			E models.Date `json:"e"`
		}{strconv.FormatInt(pid, 10), w.Start, w.End})}
	},
}

// cacheFigure is the read cache's phase: cached reads beside pgbench
// running the SQL of the same reads, the same reads while 1% of the
// requests book slots they list, how long a booking on one server takes
// to leave the other server's cache, and the memory of a full cache.
type cacheFigure struct {
	Budget       int64
	Reads        []readFigure
	Mixed        []mixedFigure
	Invalidation invalidationFigure
	Full         fullCache
}

// mixedFigure is one cached read load with bookings beside it.
type mixedFigure struct {
	API       string
	Load      loadResult
	Bookings  loadResult
	CeilingTP float64
}

func (f mixedFigure) ratio() float64 { return f.Load.RPS / f.CeilingTP }

// invalidationFigure is the delay from a booking's answer on server A to
// the first answer of server B's (cached) page without the booked slot.
type invalidationFigure struct {
	N             int
	P50, P99, Max time.Duration
}

// fullCache is a server's memory once reads filled its default budget.
type fullCache struct {
	Budget     int64
	CacheBytes float64
	Entries    float64
	RSS        int64 // VmRSS after the reads
	RSSOff     int64 // VmRSS of a server without a cache after the same reads
}

// measureCache runs the phase on the dataset the reads phase used: a
// server with a budget that holds every read of the load (o.cacheBytes),
// a second one beside it for the invalidation delay, and a server with
// the default budget for the memory of a full cache.
func measureCache(ctx context.Context, b *benchDB, bin, tmp string, o *options, ds *dataset) (cacheFigure, error) {
	fig := cacheFigure{Budget: o.cacheBytes}
	env := append(slices.Clone(o.serverEnv), "CACHE_MAX_BYTES="+strconv.FormatInt(o.cacheBytes, 10))
	a, err := startServer(ctx, bin, b.url, env...)
	if err != nil {
		return fig, err
	}
	defer a.stop()
	for _, api := range []readAPI{graphqlRead, graphqlProviderRead, restRead} {
		fmt.Printf("-- cached reads: %s, %d connections, %s after %s warm-up, beside pgbench\n", api.Name, o.conns, o.duration, o.warmup)
		f, err := measureRead(ctx, b, a, bin, tmp, o, ds, api)
		fmt.Println(f.line())
		if err != nil {
			return fig, fmt.Errorf("%s: %w", api.Name, err)
		}
		fig.Reads = append(fig.Reads, f)
	}
	for _, f := range fig.Reads {
		api := map[string]readAPI{graphqlRead.Name: graphqlRead, graphqlProviderRead.Name: graphqlProviderRead, restRead.Name: restRead}[f.API]
		rate := max(1, int(f.Load.RPS/99)) // bookings are 1% of all requests
		fmt.Printf("-- cached reads with bookings: %s beside %d bookings/s of slots they list\n", api.Name, rate)
		m, err := mixedLoad(ctx, b, a, ds, api, o, rate)
		m.CeilingTP = f.Ceiling.TPS
		fmt.Printf("  reads:%s\n  bookings:%s | ratio to the pgbench ceiling %.2f×\n", m.Load.line(), m.Bookings.line(), m.ratio())
		if err != nil {
			return fig, err
		}
		fig.Mixed = append(fig.Mixed, m)
	}
	fmt.Println("-- invalidation across two servers: book on A, read B's cached page until the slot leaves it")
	bsrv, err := startServer(ctx, bin, b.url, env...)
	if err != nil {
		return fig, err
	}
	defer bsrv.stop()
	fig.Invalidation, err = invalidationDelay(ctx, a, bsrv, ds, o.invalidations)
	fmt.Printf("  %d bookings: p50 %s, p99 %s, max %s\n", fig.Invalidation.N, ms(fig.Invalidation.P50), ms(fig.Invalidation.P99), ms(fig.Invalidation.Max))
	if err != nil {
		return fig, err
	}
	fmt.Println("-- memory: the default budget filled by the three reads, beside a server without a cache")
	fig.Full, err = fullCacheMemory(ctx, b, bin, o, ds)
	fmt.Printf("  cache %s MiB in %.0f answers (budget %d MiB), RSS %d MiB; without a cache %d MiB\n",
		strconv.FormatFloat(fig.Full.CacheBytes/(1<<20), 'f', 1, 64), fig.Full.Entries, fig.Full.Budget>>20, fig.Full.RSS>>20, fig.Full.RSSOff>>20)
	return fig, err
}

// mixedLoad runs api's reads with wrk on s while vegeta books rate slots
// per second among those the reads list (a random free slot of the read
// windows, each once), both for o.duration after the reads' warm-up.
func mixedLoad(ctx context.Context, b *benchDB, s *server, ds *dataset, api readAPI, o *options, rate int) (mixedFigure, error) {
	fig := mixedFigure{API: api.Name}
	wins := readWindows(ds, 0)
	n := int(float64(rate)*(o.duration+o.warmup).Seconds()*1.2) + 10
	rows, err := b.pool.Query(ctx, `SELECT id FROM time_slots WHERE booked_count = 0 AND date BETWEEN $1 AND $2 ORDER BY random() LIMIT $3`,
		string(wins[0].Start), string(wins[len(wins)-1].End), n)
	if err != nil {
		return fig, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fig, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fig, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fig.Bookings = runLoad(ctx, s.base, bookingsOf(ids), 4, rate, o.duration+o.warmup)
	}()
	fig.Load, err = readLoad(ctx, s, ds, api, o, o.duration)
	wg.Wait()
	if err == nil && fig.Load.Errors > 0 {
		err = fmt.Errorf("%s: %d of %d reads failed; first: %s", api.Name, fig.Load.Errors, fig.Load.Requests, fig.Load.FirstError)
	}
	if err == nil && fig.Bookings.Errors > 0 {
		err = fmt.Errorf("bookings: %d of %d failed; first: %s", fig.Bookings.Errors, fig.Bookings.Requests, fig.Bookings.FirstError)
	}
	return fig, err
}

// firstSlot reads the first id of a page answer.
var firstSlot = regexp.MustCompile(`"node":\{"id":"(\d+)"`)

// invalidationDelay books, n times, the first slot of a page server b has
// cached, on server a, and times from a's answer to b's first answer of
// that page without the slot.
func invalidationDelay(ctx context.Context, a, b *server, ds *dataset, n int) (invalidationFigure, error) {
	fig := invalidationFigure{N: n}
	wins := readWindows(ds, 0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var delays []time.Duration
	for i := range n {
		p := ds.providers[(i*7919)%len(ds.providers)]
		req := graphqlRead.request(p.ID, wins[i%len(wins)])
		var first string
		for range 2 { // the second read is the cache's
			_, body, err := graphqlRead.do(ctx, client, b.base, req)
			if err != nil {
				return fig, err
			}
			m := firstSlot.FindSubmatch(body)
			if m == nil {
				return fig, fmt.Errorf("no slot in %s", head(body))
			}
			first = string(m[1])
		}
		id, _ := strconv.ParseInt(first, 10, 64)
		code, err := bookOnce(ctx, client, a.base, id, "invalidation-"+strconv.Itoa(i))
		if err != nil || code != "" {
			return fig, fmt.Errorf("book slot %d on A: %v %s", id, err, code)
		}
		booked := time.Now()
		for {
			_, body, err := graphqlRead.do(ctx, client, b.base, req)
			if err != nil {
				return fig, err
			}
			if m := firstSlot.FindSubmatch(body); m != nil && string(m[1]) != first {
				delays = append(delays, time.Since(booked))
				break
			}
			if time.Since(booked) > 10*time.Second {
				return fig, fmt.Errorf("server B still lists slot %d 10 s after A booked it", id)
			}
		}
	}
	slices.Sort(delays)
	fig.P50, fig.P99, fig.Max = quantile(delays, 0.50), quantile(delays, 0.99), delays[len(delays)-1]
	return fig, nil
}

// fullCacheMemory runs the three reads for o.warmup + o.duration on a
// server with the default budget and on one without a cache, and answers
// their resident memory.
func fullCacheMemory(ctx context.Context, b *benchDB, bin string, o *options, ds *dataset) (fullCache, error) {
	var fig fullCache
	for _, budget := range []string{"", "0"} {
		env := slices.Clone(o.serverEnv)
		if budget != "" {
			env = append(env, "CACHE_MAX_BYTES="+budget)
		} else {
			env = append(env, "CACHE_MAX_BYTES=16777216")
		}
		s, err := startServer(ctx, bin, b.url, env...)
		if err != nil {
			return fig, err
		}
		for _, api := range []readAPI{graphqlRead, graphqlProviderRead, restRead} {
			if _, err := readLoad(ctx, s, ds, api, o, o.duration); err != nil {
				s.stop()
				return fig, err
			}
		}
		rss, err := residentMemory(s.cmd.Process.Pid)
		if err != nil {
			s.stop()
			return fig, err
		}
		if budget == "0" {
			fig.RSSOff = rss
		} else {
			fig.RSS = rss
			fig.Budget = 16 << 20
			fig.CacheBytes, err = s.metric(ctx, "timeslots_cache_bytes")
			if err == nil {
				fig.Entries, err = s.metric(ctx, "timeslots_cache_entries")
			}
			if err != nil {
				s.stop()
				return fig, err
			}
		}
		s.stop()
	}
	return fig, nil
}

// residentMemory answers a process's VmRSS in bytes.
func residentMemory(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// metric reads one unlabelled sample of the server's /metrics.
func (s *server) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(raw)
	if m == nil {
		return 0, fmt.Errorf("%s not in /metrics", name)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
