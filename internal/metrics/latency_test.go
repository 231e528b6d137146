package metrics

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"
)

// Every quantile the estimator answers is within MaxRelativeError of the
// exact quantile of the same data, on very different distributions.
func TestQuantilesAreWithinTheStatedError(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for name, gen := range map[string]func(i int) time.Duration{
		"uniform 1ms-10s": func(i int) time.Duration { return time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Second))) },
		"log-normal around 20ms": func(i int) time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*1.2) * float64(20*time.Millisecond))
		},
		"bimodal fast and slow": func(i int) time.Duration {
			if i%20 == 0 {
				return 2*time.Second + time.Duration(rng.Int64N(int64(time.Second)))
			}
			return 300*time.Microsecond + time.Duration(rng.Int64N(int64(200*time.Microsecond)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			var e estimator
			data := make([]time.Duration, 20000)
			for i := range data {
				data[i] = gen(i)
				e.add(data[i])
			}
			sort.Slice(data, func(i, j int) bool { return data[i] < data[j] })
			for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
				exact := data[int(math.Ceil(q*float64(len(data))))-1]
				got := e.quantile(q)
				if rel := math.Abs(float64(got-exact)) / float64(exact); rel > MaxRelativeError {
					t.Errorf("q%.3f = %v, exact %v: relative error %.4f > %.4f", q, got, exact, rel, MaxRelativeError)
				}
			}
		})
	}
}

func TestPerformanceBoundsTheOperations(t *testing.T) {
	t.Parallel()
	p := NewPerformance()
	for i := range maxRecorded + 50 {
		p.Observe("query Op"+strconv.Itoa(i), time.Millisecond)
	}
	r := p.Snapshot()
	if len(r.Operations) != maxRecorded+1 {
		t.Fatalf("%d operations tracked, want %d plus %q", len(r.Operations), maxRecorded, OtherOperation)
	}
	if r.Operations[0].Operation != OtherOperation || r.Operations[0].Count != 50 {
		t.Errorf("busiest = %+v, want %q with the 50 overflowing requests", r.Operations[0], OtherOperation)
	}
	b := newOperationNames(2, nil)
	if b.name("a") != "a" || b.name("b") != "b" || b.name("c") != OtherOperation || b.name("a") != "a" {
		t.Error("the table must keep the first names while they are the busiest and fold later ones into other")
	}
}
