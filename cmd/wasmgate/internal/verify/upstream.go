package verify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Reply is what an echo upstream answers: the request as it arrived.
type Reply struct {
	// Service is the cluster the upstream serves.
	Service string `json:"service"`
	Method  string `json:"method"`
	// Path is the request target as it arrived.
	Path string `json:"path"`
	Host string `json:"host"`
	// Headers are the header lines in arrival order, names lower-case.
	Headers [][2]string `json:"headers"`
}

// upstream is an HTTP/1.1 server that answers every request with a Reply.
// It reads requests itself: net/http would refuse targets Envoy forwards
// (a malformed %-escape) and forget the order of header lines.
type upstream struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startUpstream(name string) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{name: name, ln: ln}
	u.wg.Add(1)
	go u.serve()
	return u, nil
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) close() {
	u.ln.Close()
	u.wg.Wait()
}

func (u *upstream) serve() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		go u.conn(c)
	}
}

func (u *upstream) conn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		reply, length, err := readRequest(r)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, r, length); err != nil {
			return
		}
		reply.Service = u.name
		body, _ := json.Marshal(reply)
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

// readRequest reads a request head; length is its body's Content-Length.
func readRequest(r *bufio.Reader) (reply Reply, length int64, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return reply, 0, err
	}
	parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
	if len(parts) != 3 {
		return reply, 0, fmt.Errorf("request line %q", line)
	}
	reply.Method, reply.Path = parts[0], parts[1]
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return reply, 0, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return reply, length, nil
		}
		name, value, _ := strings.Cut(line, ":")
		name, value = strings.ToLower(name), strings.TrimSpace(value)
		switch name {
		case "host":
			reply.Host = value
			continue
		case "content-length":
			length, _ = strconv.ParseInt(value, 10, 64)
		}
		reply.Headers = append(reply.Headers, [2]string{name, value})
	}
}
