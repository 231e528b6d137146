// Package models holds the GORM structs of timeslots and the rules about
// them that need no database: input validation, working-hours parsing and
// the expansion of a provider's weekly schedule into concrete slots.
package models
