package database

import "context"

// SQLiteUniqueIndexes lets the tests hold the table to the schema.
var SQLiteUniqueIndexes = sqliteUniqueIndexes

// MigrateTo applies the migrations up to version only, leaving the
// database as an older release did.
func (d *DB) MigrateTo(ctx context.Context, version int64) error {
	p, _, done, err := d.migrator()
	if err != nil {
		return err
	}
	defer done()
	_, err = p.UpTo(ctx, version)
	return err
}
