package metrics

import (
	"math"
	"sort"
	"sync"
	"time"
)

// The latency estimator keeps, per operation, counts in fixed logarithmic
// buckets: bucket i holds durations in [1µs·g^i, 1µs·g^(i+1)) with
// g = 2^(1/8), so 256 buckets span 1µs to over an hour. Counting is exact;
// a quantile is read as the geometric middle of the bucket holding its
// rank, so its relative error is at most g^(1/2)−1 ≈ 4.4%, whatever the
// distribution and however many requests were seen. Memory is 2 KiB per
// operation, fixed (the same idea as HdrHistogram and Prometheus' native
// histograms, without their extra machinery).
const (
	bucketsPerOctave = 8
	latencyBuckets   = 256
	latencyBase      = time.Microsecond
)

// MaxRelativeError is the estimator's worst-case relative error of a
// quantile.
var MaxRelativeError = math.Pow(2, 0.5/bucketsPerOctave) - 1

type estimator struct {
	counts [latencyBuckets]uint64
	n      uint64
	max    time.Duration
}

func bucketOf(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	i := int(math.Floor(math.Log2(float64(d)/float64(latencyBase)) * bucketsPerOctave))
	return min(max(i, 0), latencyBuckets-1)
}

func (e *estimator) add(d time.Duration) {
	e.counts[bucketOf(d)]++
	e.n++
	e.max = max(e.max, d)
}

// quantile answers the q-quantile (0 < q ≤ 1) of what was added.
func (e *estimator) quantile(q float64) time.Duration {
	if e.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(e.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range e.counts {
		seen += c
		if seen >= rank {
			mid := time.Duration(float64(latencyBase) * math.Pow(2, (float64(i)+0.5)/bucketsPerOctave))
			return min(mid, e.max)
		}
	}
	return e.max
}

// maxRecorded bounds the operations of the performance record, a safety
// net: its GraphQL operations are bounded by maxOperations, its routes by
// the mux's patterns times the method labels.
const maxRecorded = 2 * maxOperations

// Performance keeps request counts and latency quantiles per operation
// since the process started, for the admin stats.
type Performance struct {
	started time.Time

	mu  sync.Mutex
	ops map[string]*estimator
}

// NewPerformance starts an empty record.
func NewPerformance() *Performance {
	return &Performance{started: time.Now().UTC(), ops: map[string]*estimator{}}
}

// Observe records one request of op that took d.
func (p *Performance) Observe(op string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.ops[op]
	if e == nil {
		if len(p.ops) >= maxRecorded {
			op = OtherOperation
			e = p.ops[op]
		}
		if e == nil {
			e = &estimator{}
			p.ops[op] = e
		}
	}
	e.add(d)
}

// forget drops op's figures: its name lost its entry.
func (p *Performance) forget(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ops, op)
}

// OperationStats are one operation's figures in the admin stats.
type OperationStats struct {
	Operation string  `json:"operation"`
	Count     uint64  `json:"count"`
	P50Ms     float64 `json:"p50Ms"`
	P95Ms     float64 `json:"p95Ms"`
	P99Ms     float64 `json:"p99Ms"`
	MaxMs     float64 `json:"maxMs"`
}

// Report is the "performance" object of the admin stats.
type Report struct {
	Since time.Time `json:"since"`
	// MaxRelativeError of the percentiles (see the estimator).
	MaxRelativeError float64          `json:"maxRelativeError"`
	Operations       []OperationStats `json:"operations"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

// Snapshot answers the figures of every operation, busiest first.
func (p *Performance) Snapshot() Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Report{Since: p.started, MaxRelativeError: math.Round(MaxRelativeError*1000) / 1000, Operations: make([]OperationStats, 0, len(p.ops))}
	for op, e := range p.ops {
		out.Operations = append(out.Operations, OperationStats{
			Operation: op, Count: e.n,
			P50Ms: ms(e.quantile(0.50)), P95Ms: ms(e.quantile(0.95)), P99Ms: ms(e.quantile(0.99)), MaxMs: ms(e.max),
		})
	}
	sort.Slice(out.Operations, func(i, j int) bool {
		a, b := out.Operations[i], out.Operations[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Operation < b.Operation
	})
	return out
}
