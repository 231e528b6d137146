// Package webhooks tells systems outside the server about bookings: admins
// register endpoints, each booking event is enqueued on a durable job
// queue (River) in the transaction of the booking itself (the slots
// package's Outbox seam) or, for a new booking on PostgreSQL, staged by
// the booking's statement and moved onto River in batches (outbox.go),
// and a worker delivers it, signed as Standard Webhooks says, retrying
// with exponential backoff until an attempt answers 2xx or the attempts
// run out.
package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"timeslots/internal/database"
	"timeslots/internal/slots"
	"timeslots/models"
)

// queue is the River queue of deliveries.
const queue = "webhooks"

// Options tune deliveries; the zero value of each field is its default.
type Options struct {
	// MaxAttempts is how many times a delivery is tried before it fails
	// for good (default 10).
	MaxAttempts int
	// Timeout bounds one attempt, from dialing to the response body read
	// (default 10 s).
	Timeout time.Duration
	// Backoff is the wait after the first failed attempt; each later one
	// doubles it, up to MaxBackoff (default 30 s).
	Backoff time.Duration
	// AllowPrivate lets deliveries reach loopback, private, link-local
	// and unspecified addresses, which are refused otherwise.
	AllowPrivate bool
	// Workers is how many deliveries this process runs at once (default
	// 20).
	Workers int
	// Refresh is how often the view of the endpoints that decides which
	// events are enqueued is read again, so an endpoint created on another
	// replica is heard of within it (default 5 s). Changes made through
	// this process apply at once.
	Refresh time.Duration
	// Poll is how often idle workers look for due deliveries (default
	// 200 ms).
	Poll time.Duration
	// Observe, if set, hears each attempt's outcome (metrics).
	Observe func(status models.WebhookDeliveryStatus)
	Logger  *slog.Logger
}

// MaxBackoff caps the wait between two attempts.
const MaxBackoff = 12 * time.Hour

func (o *Options) defaults() {
	if o.MaxAttempts < 1 {
		o.MaxAttempts = 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 30 * time.Second
	}
	if o.Workers < 1 {
		o.Workers = 20
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Service is the webhooks of one process: the admin operations on
// endpoints, the outbox the slot manager enqueues booking events with,
// and the River client whose workers deliver them.
type Service struct {
	db     *database.DB
	opts   Options
	client *river.Client[*sql.Tx]
	http   *http.Client
	now    func() time.Time

	view atomic.Pointer[endpointView]
	// staged wakes the relay: a booking staged an event (outbox.go).
	staged chan struct{}

	mu      sync.Mutex // guards started, stop
	started bool
	stop    context.CancelFunc
	loops   sync.WaitGroup // the refresh and the relay, until stop
}

// endpointView is the enabled endpoints and which want each kind of
// event, as last read.
type endpointView struct {
	wants map[slots.EventKind][]int64
	byID  map[int64]*models.WebhookEndpoint
	count int
}

// New builds the webhooks of db. Its outbox works at once; deliveries
// start with Start.
func New(db *database.DB, opts Options) (*Service, error) {
	opts.defaults()
	s := &Service{db: db, opts: opts, now: time.Now, staged: make(chan struct{}, 1)}
	s.http = newHTTPClient(opts.Timeout, opts.AllowPrivate)
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &deliveryWorker{s: s}); err != nil {
		return nil, err
	}
	var driver riverdriver.Driver[*sql.Tx]
	if db.Dialect == database.SQLite {
		driver = riversqlite.New(db.SQL())
	} else {
		driver = riverdatabasesql.New(db.SQL())
	}
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{queue: {MaxWorkers: opts.Workers}},
		Workers:           workers,
		MaxAttempts:       opts.MaxAttempts,
		RetryPolicy:       backoff{base: opts.Backoff},
		JobTimeout:        opts.Timeout + 10*time.Second,
		FetchPollInterval: opts.Poll,
		FetchCooldown:     min(opts.Poll, 50*time.Millisecond),
		// A delivery whose process died mid-attempt is tried again once
		// its attempt has certainly ended.
		RescueStuckJobsAfter: 2*opts.Timeout + time.Minute,
		Logger:               slog.New(riverLog{opts.Logger.Handler()}).With(slog.String("component", "river")),
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	s.client = client
	s.view.Store(&endpointView{byID: map[int64]*models.WebhookEndpoint{}})
	return s, nil
}

// Load reads the endpoints once, so the outbox knows them before the
// first booking; Start keeps reading them every Refresh.
func (s *Service) Load(ctx context.Context) error { return s.refresh(ctx) }

// Start starts the delivery workers, the refresh of the endpoints' view
// and the relay of staged booking events (outbox.go). River's locking
// hands each due delivery to one worker of one replica. A nil Service
// starts nothing.
func (s *Service) Start(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	if err := s.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start webhook deliveries: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.started, s.stop = true, cancel
	s.loops.Go(func() { s.refreshLoop(rctx) })
	if s.db.Dialect == database.Postgres {
		s.loops.Go(func() { s.relayLoop(rctx) })
	}
	return nil
}

// Stop stops taking deliveries and waits for those running to finish, or
// for ctx to end, when it cancels them (their jobs are retried later). A
// nil Service stops nothing.
func (s *Service) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	s.stop()
	s.loops.Wait()
	if err := s.client.Stop(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return errors.Join(err, s.client.StopAndCancel(cctx))
	}
	return nil
}

func (s *Service) refreshLoop(ctx context.Context) {
	s.every(ctx, s.opts.Refresh, nil, 0, "webhook endpoints not refreshed", s.refresh)
}

// every runs f every period, and also gather after each signal on wake
// (nil: none), until ctx ends; it logs f's errors as failed, unless ctx
// ended.
func (s *Service) every(ctx context.Context, period time.Duration, wake <-chan struct{}, gather time.Duration, failed string, f func(context.Context) error) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(gather):
			}
		case <-t.C:
		}
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn(failed, slog.String("error", err.Error()))
		}
	}
}

// refresh reads which enabled endpoints want which events.
func (s *Service) refresh(ctx context.Context) error {
	var rows []models.WebhookEndpoint
	if err := s.db.WithContext(ctx).Where("enabled").Order("id").Find(&rows).Error; err != nil {
		return err
	}
	v := &endpointView{wants: map[slots.EventKind][]int64{}, byID: make(map[int64]*models.WebhookEndpoint, len(rows)), count: len(rows)}
	for i, r := range rows {
		v.byID[r.ID] = &rows[i]
		for _, e := range strings.Split(r.Events, ",") {
			v.wants[slots.EventKind(e)] = append(v.wants[slots.EventKind(e)], r.ID)
		}
	}
	s.view.Store(v)
	return nil
}

// Endpoints answers how many enabled endpoints this process's view holds.
func (s *Service) Endpoints() int { return s.view.Load().count }

// Wants reports whether an enabled endpoint wants events of kind, by the
// view last read (see Options.Refresh).
func (s *Service) Wants(kind slots.EventKind) bool { return len(s.view.Load().wants[kind]) > 0 }

// Enqueue enqueues e's delivery to each enabled endpoint that wants it,
// in tx, the transaction of the change: one job per endpoint, all with
// the same event id.
func (s *Service) Enqueue(ctx context.Context, tx *sql.Tx, e slots.Event) error {
	ids := s.view.Load().wants[e.Kind]
	if len(ids) == 0 {
		return nil
	}
	body, id, err := eventBody(string(e.Kind), e.At, eventData(e))
	if err != nil {
		return err
	}
	opts := &river.InsertOpts{Queue: queue}
	var hold int64
	if e.Kind == slots.HoldExpiredEvent {
		// Owed at the hold's expiry, if the hold is still held then
		// (deliveryWorker.holdExpired).
		opts.ScheduledAt, hold = e.At, e.Hold.ID
	}
	deliveries := make([]deliveryArgs, len(ids))
	for i, endpoint := range ids {
		deliveries[i] = deliveryArgs{EndpointID: endpoint, EventID: id, Type: string(e.Kind), Body: body, HoldID: hold}
	}
	return s.insert(ctx, tx, opts, deliveries)
}

// insert enqueues deliveries with opts in tx, with one River InsertManyTx.
func (s *Service) insert(ctx context.Context, tx *sql.Tx, opts *river.InsertOpts, deliveries []deliveryArgs) error {
	params := make([]river.InsertManyParams, len(deliveries))
	for i, d := range deliveries {
		params[i] = river.InsertManyParams{Args: d, InsertOpts: opts}
	}
	_, err := s.client.InsertManyTx(ctx, tx, params)
	return err
}

// deliveryArgs is one delivery job: an event's body to one endpoint. The
// body is kept as one JSON string, not as an object: River indexes its
// jobs' args with a GIN index, which then holds one entry for the body
// rather than one per field of the booking, and the bytes signed and sent
// are the same at every attempt.
type deliveryArgs struct {
	EndpointID int64  `json:"endpoint_id"`
	EventID    string `json:"event_id"`
	Type       string `json:"type"`
	Body       string `json:"body"`
	// HoldID names the hold of a hold.expired event, which is delivered
	// only if the hold expired held.
	HoldID int64 `json:"hold_id,omitempty"`
}

// Kind names the job kind in River's table.
func (deliveryArgs) Kind() string { return "webhook_delivery" }

// backoff is the retry policy: Backoff after the first failed attempt,
// doubling with each, capped at MaxBackoff, with no jitter, so the next
// attempt recorded with a delivery is the one River schedules.
type backoff struct{ base time.Duration }

// NextRetry schedules the attempt after job's latest.
func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(b.after(job.Attempt))
}

// after is the wait after failed attempt n (1 = the first).
func (b backoff) after(n int) time.Duration {
	d := b.base
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// riverLog writes River's own records at warn level at most: what fails
// in its background (electing a leader, fetching, completing) it retries
// by itself, as when the database refuses connections for a while, which
// the server logs at warn level too. Deliveries that fail are recorded
// with the delivery and counted in the metrics.
type riverLog struct{ slog.Handler }

func (h riverLog) Enabled(ctx context.Context, level slog.Level) bool {
	return h.Handler.Enabled(ctx, min(level, slog.LevelWarn))
}

func (h riverLog) Handle(ctx context.Context, r slog.Record) error {
	r.Level = min(r.Level, slog.LevelWarn)
	return h.Handler.Handle(ctx, r)
}

func (h riverLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return riverLog{h.Handler.WithAttrs(attrs)}
}

func (h riverLog) WithGroup(name string) slog.Handler { return riverLog{h.Handler.WithGroup(name)} }
