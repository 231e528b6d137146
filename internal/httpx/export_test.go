package httpx

import "time"

// SetClock has s read the time from now, so a test can outlive a session.
func (s *Sessions) SetClock(now func() time.Time) { s.now = now }
