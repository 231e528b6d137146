// Package migrations holds the versioned SQL schema of timeslots, one folder
// per dialect, embedded in the binary.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
