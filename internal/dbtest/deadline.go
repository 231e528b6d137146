package dbtest

import (
	"context"
	"sync"
)

// Deadline is a context whose deadline passes when the test says so
// (Expire), not after a duration: a test stops work at a chosen step, such
// as when a chosen statement is sent (database.DB.WatchStatements), and
// its assertions do not depend on how fast the machine is. Once expired,
// Err answers context.DeadlineExceeded, as a real deadline's would.
type Deadline struct {
	context.Context
	done chan struct{}
	once sync.Once
}

// NewDeadline answers a Deadline over parent.
func NewDeadline(parent context.Context) *Deadline {
	return &Deadline{Context: parent, done: make(chan struct{})}
}

// Expire makes the deadline pass; later calls do nothing.
func (d *Deadline) Expire() { d.once.Do(func() { close(d.done) }) }

// Done is closed once the deadline has passed.
func (d *Deadline) Done() <-chan struct{} { return d.done }

// Err answers context.DeadlineExceeded once the deadline has passed.
func (d *Deadline) Err() error {
	select {
	case <-d.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
