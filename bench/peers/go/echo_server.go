// echo_server.go: the Go peer of bench/echo_server.c: a TCP echo server, one goroutine per
// connection.
//
// Usage: echo_server [--port N] [--bind ADDR]   (defaults 0, any free port, and 127.0.0.1)
// Build: go build -o echo_server echo_server.go   (standard library only; bench.go not needed)
//
// Prints "PORT <n>" on stdout once it listens, then echoes every byte each connection sends
// back to it, in order, until the peer closes, for any number of connections, until it is
// killed (SIGTERM or SIGINT end it at once: Go's default handling, nothing to clean up). Bad
// arguments: a message on stderr and exit 2 (package flag); a port it cannot listen on: exit 1.
//
// What a Go programmer writes: net.Listen and a goroutine per accepted connection that reads
// into its own buffer, reused for the life of the connection, and writes back what it read. The
// runtime's netpoller parks a goroutine blocked in Read or Write, and GOMAXPROCS keeps its
// default (one thread per CPU) unless the environment sets it. Write returns only once all the
// bytes are out, so a connection whose peer does not read stops reading too. A read takes at
// most 32 KiB (io.Copy's buffer), more than any request the benchmark client sends; io.Copy(c, c)
// itself would splice through a kernel pipe instead, and is no faster for small echoes. Go's
// defaults do the rest of what bench/echo_epoll.c does by hand: TCP_NODELAY is on for every TCP
// connection, SO_REUSEADDR for listeners, the listen backlog is the kernel's maximum
// (net.core.somaxconn), and since Go 1.19 package os raises the soft RLIMIT_NOFILE to the hard
// limit at start, so 1,000 connections fit under the usual limits.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF when the peer closes, or a reset
		}
	}
}

func main() {
	port := flag.Int("port", 0, "TCP port to listen on (0: any free port)")
	bind := flag.String("bind", "127.0.0.1", "address to listen on")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		usage("unexpected argument '%s'", flag.Arg(0))
	case *port < 0 || *port > 65535:
		usage("--port must be in [0, 65535], got %d", *port)
	case net.ParseIP(*bind) == nil:
		usage("--bind must be a numeric IP address, got '%s'", *bind)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(*bind, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port) // os.Stdout is unbuffered

	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of descriptors (EMFILE) and the like: report it, back off a moment and go
			// on, as net/http's server does. The listener is never closed.
			fmt.Fprintf(os.Stderr, "echo_server: accept: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go echo(c)
	}
}

func usage(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "echo_server: "+format+"\n", a...)
	flag.Usage()
	os.Exit(2)
}
