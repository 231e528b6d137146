package main

// scalingPoint is one scaling step: read latency and generation rate.
type scalingPoint struct {
	Slots          int
	ReadP50        float64 // ms
	ReadP99        float64 // ms
	GenRowsPerSec  float64
	CopyRowsPerSec float64
}

func writeChart(path string, pts []scalingPoint) error { return nil }
