// Command demo-upstream is a stand-in backend for the wasmgate demo and
// end-to-end tests: it answers every request with JSON describing what it
// received, so a person or a test can see what the gateway did to it.
//
// Usage:
//
//	demo-upstream -listen 127.0.0.1:18081 -name product-service -version v1
//
// GET /healthz answers "ok". Every other request gets a Reply as JSON. Once
// listening, it prints "listening on ADDR" on stderr (with -listen
// 127.0.0.1:0, ADDR tells the port chosen).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Reply is the JSON body of every answer but /healthz.
type Reply struct {
	// Service and Version are the -name and -version flags.
	Service string `json:"service"`
	Version string `json:"version"`
	Method  string `json:"method"`
	// Path is the request target as it arrived: path and query string.
	Path string `json:"path"`
	Host string `json:"host"`
	// Headers has lower-case names, values in arrival order.
	Headers map[string][]string `json:"headers"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address to listen on")
	name := flag.String("name", "product-service", "service name to report")
	version := flag.String("version", "v1", "service version to report")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("demo-upstream: ")

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: handler(*name, *version), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("%s %s listening on %s", *name, *version, ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// handler answers /healthz and describes every other request. It is not a
// ServeMux: a mux would redirect paths like "//123" to a clean form, hiding
// what the gateway actually sent.
func handler(service, version string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		reply := Reply{
			Service: service,
			Version: version,
			Method:  r.Method,
			Path:    r.RequestURI,
			Host:    r.Host,
			Headers: make(map[string][]string, len(r.Header)),
		}
		for k, v := range r.Header {
			reply.Headers[strings.ToLower(k)] = v
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(reply)
	})
}
