//go:build benchpprof

package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on the default mux
	"os"
)

// With -tags benchpprof, which only `bench -profile` builds, the server also
// serves net/http/pprof on PPROF_ADDR (a loopback address), so the benchmark
// can record where CPU goes per request. Production builds never contain it.
func init() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
		return
	}
	fmt.Fprintf(os.Stderr, "pprof listening on http://%s\n", ln.Addr())
	go func() { _ = http.Serve(ln, nil) }()
}
