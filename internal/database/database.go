// Package database opens the store behind timeslots (PostgreSQL, or an
// embedded SQLite file), applies the embedded migrations, and recognises the
// database errors the domain must react to.
package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the SQL dialect behind a *gorm.DB.
type Dialect string

// The two supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DefaultSQLitePath is where `go run .` keeps its data with no configuration.
const DefaultSQLitePath = "./data/timeslots.db"

// sqlitePragmas make SQLite safe for concurrent bookings: WAL lets readers
// run beside the writer, busy_timeout makes writers queue instead of failing
// with "database is locked", immediate transactions take the write lock at
// BEGIN so a read-then-write transaction can never deadlock on upgrade, and
// foreign_keys turns on the ON DELETE SET NULL that keeps booking history.
// No _time_format option: the driver stops reading options after it.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"

// Options tune the connection pool.
type Options struct {
	MaxOpenConns int           // 0: a dialect default (PostgreSQL 20, SQLite 8)
	MaxIdleConns int           // 0: same as MaxOpenConns
	ConnMaxIdle  time.Duration // 0: 5 minutes
	// IdlePing: a pooled PostgreSQL connection idle for longer is pinged
	// before it is lent again (0: a second, pgx's rule). Connections that
	// may have died are pinged whatever their idle time (see
	// DB.CheckConnections); the tests lengthen it to show that.
	IdlePing time.Duration
	// StatementTimeout, if set, makes PostgreSQL cancel any statement that
	// runs longer (its statement_timeout, set on every connection), a
	// deadline that holds even where a context does not reach. A
	// statement_timeout already in DATABASE_URL wins.
	StatementTimeout time.Duration
	Logger           logger.Interface
	// Replicas are the PostgreSQL read replicas (DATABASE_REPLICA_URLS),
	// checked as ReplicaMaxLag says (0: DefaultReplicaMaxLag).
	Replicas      []Target
	ReplicaMaxLag time.Duration
}

// DB is an open store: the GORM handle plus what the rest of the program
// needs to know about it.
type DB struct {
	*gorm.DB
	Dialect Dialect
	// Path is the SQLite file (empty for PostgreSQL).
	Path string

	watch *watchers
	// live checks the primary pool's connections (PostgreSQL only).
	live *liveness
	// direct is the DSN migrations run on, PostgreSQL's only: a direct
	// session (their advisory lock needs one) without the requests'
	// statement_timeout, which a migration may well outlast. It is
	// DATABASE_DIRECT_URL behind a pooler, else DATABASE_URL as given.
	direct string
	// replicas route reads to the read replicas; nil without any.
	replicas *Replicas
}

// Target is a parsed DATABASE_URL.
type Target struct {
	Dialect Dialect
	DSN     string // driver DSN
	Path    string // SQLite file
	// Direct is the DSN of a direct PostgreSQL connection
	// (DATABASE_DIRECT_URL) when DSN goes through a pooler in transaction
	// mode, which holds no session; empty when DSN is direct itself.
	Direct string
}

// Pooled reports whether the target goes through a connection pooler:
// its direct URL differs from it.
func (t Target) Pooled() bool { return t.Direct != "" && t.Direct != t.DSN }

// SessionDSN answers the DSN of what needs a session of its own (LISTEN,
// session locks): Direct when set, else DSN.
func (t Target) SessionDSN() string {
	if t.Direct != "" {
		return t.Direct
	}
	return t.DSN
}

// WithDirect answers t with DATABASE_DIRECT_URL raw (empty: none, the
// URL itself is direct). Only a PostgreSQL target takes one.
func (t Target) WithDirect(raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return t, nil
	}
	if t.Dialect != Postgres {
		return Target{}, errors.New("DATABASE_DIRECT_URL needs a postgres:// DATABASE_URL")
	}
	d, err := parsePostgres("DATABASE_DIRECT_URL", raw)
	if err != nil {
		return Target{}, err
	}
	t.Direct = d.DSN
	return t, nil
}

// ParseReplicaURLs reads DATABASE_REPLICA_URLS, already split: each must
// be a postgres:// URL, and only a PostgreSQL primary takes replicas.
func ParseReplicaURLs(primary Target, raws []string) ([]Target, error) {
	if len(raws) == 0 {
		return nil, nil
	}
	if primary.Dialect != Postgres {
		return nil, errors.New("DATABASE_REPLICA_URLS needs a postgres:// DATABASE_URL")
	}
	out := make([]Target, 0, len(raws))
	for _, raw := range raws {
		t, err := parsePostgres("DATABASE_REPLICA_URLS", raw)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// parsePostgres reads a postgres:// URL of the variable name; the message
// never quotes it (it may hold a password).
func parsePostgres(name, raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return Target{}, fmt.Errorf("%s must hold postgres:// or postgresql:// URLs", name)
	}
	if _, err := pgx.ParseConfig(raw); err != nil {
		return Target{}, fmt.Errorf("%s holds a URL that is not a valid postgres:// URL", name)
	}
	return Target{Dialect: Postgres, DSN: raw}, nil
}

// ParseURL reads DATABASE_URL: empty means the default SQLite file,
// "sqlite:PATH" a given file, "postgres://" or "postgresql://" PostgreSQL.
func ParseURL(raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return sqliteTarget(DefaultSQLitePath), nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return Target{}, errors.New("DATABASE_URL is not a valid postgres:// URL")
		}
		return Target{Dialect: Postgres, DSN: raw}, nil
	case strings.HasPrefix(raw, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if p == "" {
			return Target{}, errors.New("DATABASE_URL sqlite: needs a file path, e.g. sqlite:./data/timeslots.db")
		}
		return sqliteTarget(p), nil
	default:
		return Target{}, errors.New("DATABASE_URL must start with postgres://, postgresql:// or sqlite: (e.g. sqlite:./data/timeslots.db)")
	}
}

func sqliteTarget(path string) Target {
	return Target{Dialect: SQLite, DSN: "file:" + path + "?" + sqlitePragmas, Path: path}
}

// Open connects to the target and checks that the connection works.
func Open(ctx context.Context, t Target, opt Options) (*DB, error) {
	cfg := &gorm.Config{
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		Logger:                 opt.Logger,
	}
	if cfg.Logger == nil {
		cfg.Logger = logger.Discard
	}
	var dial gorm.Dialector
	maxOpen := opt.MaxOpenConns
	watch := &watchers{}
	var live *liveness
	switch t.Dialect {
	case Postgres:
		conf, err := pgConfig(t.DSN, t.Pooled(), opt.StatementTimeout)
		if err != nil {
			return nil, fmt.Errorf("open %s database: %w", t.Dialect, err)
		}
		live = newLiveness(opt.IdlePing)
		dial = postgres.New(postgres.Config{Conn: live.openPool(*conf, watch)})
		if maxOpen == 0 {
			maxOpen = 20
		}
	case SQLite:
		if dir := filepath.Dir(t.Path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create the directory of %s: %w", t.Path, err)
			}
		}
		dial = sqlite.Open(t.DSN)
		if maxOpen == 0 {
			maxOpen = 8
		}
	default:
		return nil, fmt.Errorf("unknown dialect %q", t.Dialect)
	}
	gdb, err := gorm.Open(dial, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", t.Dialect, err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	maxIdle := opt.MaxIdleConns
	if maxIdle == 0 {
		maxIdle = maxOpen
	}
	idle := opt.ConnMaxIdle
	if idle == 0 {
		idle = 5 * time.Minute
	}
	sizePool(sqlDB, maxOpen, maxIdle, idle)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", t.Dialect, err)
	}
	db := &DB{DB: gdb, Dialect: t.Dialect, Path: t.Path, watch: watch, live: live}
	if t.Dialect == Postgres {
		db.direct = t.DSN
		if t.Pooled() {
			db.direct = t.Direct
		}
	}
	if len(opt.Replicas) > 0 {
		if t.Dialect != Postgres {
			_ = sqlDB.Close()
			return nil, errors.New("read replicas need a PostgreSQL primary")
		}
		reps, err := openReplicas(sqlDB, opt.Replicas, t.Pooled(), opt.StatementTimeout, opt.ReplicaMaxLag, opt.IdlePing, func(p *sql.DB) {
			sizePool(p, maxOpen, maxIdle, idle)
		})
		if err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
		db.replicas = reps
	}
	return db, nil
}

func sizePool(p *sql.DB, maxOpen, maxIdle int, idle time.Duration) {
	p.SetMaxOpenConns(maxOpen)
	p.SetMaxIdleConns(maxIdle)
	p.SetConnMaxIdleTime(idle)
}

// pgConfig is pgx's configuration of a PostgreSQL URL. Behind a pooler
// in transaction mode (pooled) each transaction may run on another
// server connection, so two things change unless the URL sets them
// itself: statements are not prepared by name (pgx's default
// cache_statement would find its statements missing on the next server
// connection) but described once and sent unnamed with their parameters
// in the same round trip (cache_describe), and statement_timeout is not
// sent as a start-up parameter, which PgBouncer refuses: the pooler's
// server connections carry it (README).
func pgConfig(dsn string, pooled bool, statementTimeout time.Duration) (*pgx.ConnConfig, error) {
	if !pooled {
		var err error
		if dsn, err = withStatementTimeout(dsn, statementTimeout); err != nil {
			return nil, err
		}
	}
	conf, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if pooled && !strings.Contains(dsn, "default_query_exec_mode") {
		conf.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	return conf, nil
}

// withStatementTimeout adds statement_timeout (in milliseconds) to a
// postgres:// URL; pgx sends unknown URL parameters as run-time settings.
func withStatementTimeout(dsn string, d time.Duration) (string, error) {
	if d <= 0 {
		return dsn, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", errors.New("DATABASE_URL is not a valid postgres:// URL")
	}
	q := u.Query()
	if q.Get("statement_timeout") == "" {
		q.Set("statement_timeout", strconv.FormatInt(d.Milliseconds(), 10))
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// SQL answers the underlying pool.
func (d *DB) SQL() *sql.DB {
	s, _ := d.DB.DB()
	return s
}

// Close stops the replicas' lag checks and closes every pool.
func (d *DB) Close() error {
	if d.replicas != nil {
		d.replicas.close()
	}
	return d.SQL().Close()
}

// Replicas answers the read replicas, nil when there are none.
func (d *DB) Replicas() *Replicas { return d.replicas }

// The unique indexes of the schema, by the names PostgreSQL gives them
// (migrations/postgres). IsUniqueViolation answers these names on both
// databases, so a caller tells apart which rule a write broke by name.
const (
	UniqueSlotStart        = "time_slots_provider_start_key"         // one slot per provider and start
	UniqueBookingKey       = "bookings_idempotency_key"              // one anonymous booking per idempotency key
	UniqueOwnerBookingKey  = "bookings_owner_idempotency_key"        // one booking per owner and idempotency key
	UniqueBookingReference = "bookings_reference_key"                // one booking per reference
	UniqueCustomerSeat     = "bookings_one_confirmed_per_customer"   // one confirmed seat per customer and slot
	UniqueJobAttempt       = "job_runs_job_tick_attempt_key"         // one run per job, tick and attempt
	UniqueWebhookDelivery  = "webhook_deliveries_endpoint_event_key" // one delivery per endpoint and event
	UniqueHoldReference    = "slot_holds_reference_key"              // one hold per reference
	UniqueHoldKey          = "slot_holds_idempotency_key"            // one anonymous hold per idempotency key
	UniqueOwnerHoldKey     = "slot_holds_owner_idempotency_key"      // one hold per owner and idempotency key
)

// sqliteUniqueIndexes names SQLite's unique indexes by the columns its
// errors name ("UNIQUE constraint failed: bookings.idempotency_key"):
// SQLite never puts an index's name in the message, and the index behind
// a column's UNIQUE has none of its own (sqlite_autoindex_bookings_1).
// No two unique indexes of the schema cover the same columns, so the
// column list names one exactly; a test holds this table to the migrated
// schema.
var sqliteUniqueIndexes = map[string]string{
	"time_slots.provider_id, time_slots.start_time":               UniqueSlotStart,
	"bookings.idempotency_key":                                    UniqueBookingKey,
	"bookings.customer_id, bookings.idempotency_key":              UniqueOwnerBookingKey,
	"bookings.reference":                                          UniqueBookingReference,
	"bookings.slot_id, bookings.customer":                         UniqueCustomerSeat,
	"job_runs.job, job_runs.tick, job_runs.attempt":               UniqueJobAttempt,
	"webhook_deliveries.endpoint_id, webhook_deliveries.event_id": UniqueWebhookDelivery,
	"slot_holds.reference":                                        UniqueHoldReference,
	"slot_holds.idempotency_key":                                  UniqueHoldKey,
	"slot_holds.customer_id, slot_holds.idempotency_key":          UniqueOwnerHoldKey,
}

// IsUniqueViolation reports whether err is a unique-constraint violation
// (SQLSTATE 23505, or SQLite's SQLITE_CONSTRAINT_UNIQUE) and answers the
// violated index's name (one of the Unique* names for the schema's own
// indexes; on SQLite, the columns it names for any other).
func IsUniqueViolation(err error) (string, bool) {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.ConstraintName, pg.Code == "23505"
	}
	var lite interface {
		Code() int
		error
	}
	if !errors.As(err, &lite) || lite.Code() != 2067 { // SQLITE_CONSTRAINT_UNIQUE
		return "", false
	}
	// "constraint failed: UNIQUE constraint failed: t.a, t.b (2067)", or
	// "… failed: index 'name' (2067)" for an index on expressions.
	msg := lite.Error()
	const failed = "UNIQUE constraint failed: "
	if i := strings.Index(msg, failed); i >= 0 {
		msg = msg[i+len(failed):]
	}
	if i := strings.LastIndex(msg, " ("); i >= 0 {
		msg = msg[:i]
	}
	if name, ok := sqliteUniqueIndexes[msg]; ok {
		return name, true
	}
	if name, ok := strings.CutPrefix(msg, "index '"); ok {
		return strings.TrimSuffix(name, "'"), true
	}
	return msg, true
}

// IsExclusionViolation reports whether err is PostgreSQL's refusal of an
// overlapping slot (23P01).
func IsExclusionViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23P01"
}

// IsUnstorableText reports whether err is PostgreSQL's refusal of text it
// cannot hold: an invalid byte sequence (22021: a NUL byte, or bytes that
// are not UTF-8) or a character the database's encoding lacks (22P05).
// The input is at fault, not the server.
func IsUnstorableText(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "22021" || pg.Code == "22P05")
}

// IsUnavailable reports whether err says the database cannot serve now,
// through no fault of the request, so that the same request may succeed
// later: PostgreSQL refusing connections (53300 too_many_connections,
// 53400 configuration_limit_exceeded), shutting down or starting (57P01
// admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now), a
// connection that could not be opened at all, or one that broke before
// the statement was sent (pgconn.SafeToRetry, driver.ErrBadConn).
func IsUnavailable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "53300", "53400", "57P01", "57P02", "57P03":
			return true
		}
		return false
	}
	var connect *pgconn.ConnectError
	return errors.As(err, &connect) || errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err)
}

// IsRetryable reports whether err is a transient conflict that a retry of
// the whole transaction resolves: serialization failure or deadlock
// (40001, 40P01), or SQLite's busy/locked.
func IsRetryable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "40001" || pg.Code == "40P01"
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		c := lite.Code() & 0xff
		return c == 5 || c == 6 // SQLITE_BUSY, SQLITE_LOCKED
	}
	return false
}
