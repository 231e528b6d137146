package graph

// WriteJSON exposes writeJSON to the external tests.
var WriteJSON = writeJSON
