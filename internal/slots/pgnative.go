package slots

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"timeslots/models"
)

// pgQuery runs query on one of the pool's PostgreSQL connections through
// pgx's own interface rather than database/sql, and calls scan for each
// row. It is for the hottest reads: database/sql converts every column to
// a driver.Value and back, and GORM rebuilds the statement, which together
// cost more of the server's CPU than the query itself. The connection,
// its prepared statements, its deadline and its error handling are the
// pool's, as for every other statement. query uses $n placeholders.
func pgQuery(ctx context.Context, db *sql.DB, query string, args []any, scan func(pgx.Rows) error) error {
	return withPgConn(ctx, db, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// withPgConn calls f with pgx's own connection behind one of the pool's
// connections, which goes back to the pool afterwards.
func withPgConn(ctx context.Context, db *sql.DB, f func(*pgx.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the PostgreSQL driver connection is a %T, not pgx's", driverConn)
		}
		return f(c.Conn())
	})
}

// scanSlot reads one row of slotColumns (then extra columns into extra)
// into s, decoding each column straight into its field.
func scanSlot(r pgx.Row, s *models.TimeSlot, extra ...any) error {
	var date time.Time
	var status string
	dst := append([]any{&s.ID, &s.ProviderID, &s.StartTime, &s.EndTime, &date, &s.Capacity, &s.BookedCount, &status}, extra...)
	if err := r.Scan(dst...); err != nil {
		return err
	}
	s.Date = models.DateOf(date)
	s.Status = models.SlotStatus(status)
	return nil
}
