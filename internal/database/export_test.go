package database

// SQLiteUniqueIndexes lets the tests hold the table to the schema.
var SQLiteUniqueIndexes = sqliteUniqueIndexes
