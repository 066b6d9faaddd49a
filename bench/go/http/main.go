// SPDX-License-Identifier: MIT
// The Go twin of examples/http_server.c for the wrk comparison: net/http,
// listening on 127.0.0.1:<port> (first argument), "hello, world" for /,
// 404 for any other path, 8 KiB header limit, 10 s idle timeout.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

var hello = []byte("hello, world")

func handler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", "12")
	w.Write(hello)
}

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go http listening on %s\n", ln.Addr())
	srv := &http.Server{
		Handler:           http.HandlerFunc(handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       10 * time.Second,
		MaxHeaderBytes:    8192,
	}
	log.Fatal(srv.Serve(ln))
}
