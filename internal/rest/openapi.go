package rest

import (
	_ "embed"
	"net/http"
)

// openapiDoc describes every REST endpoint; the end-to-end tests validate
// each answer they get against it, so it cannot drift from the handlers.
//
//go:embed openapi.json
var openapiDoc []byte

// OpenAPI answers the OpenAPI 3.1 document of the REST endpoints, as served
// at /api/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openapiDoc...) }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openapiDoc)
}
