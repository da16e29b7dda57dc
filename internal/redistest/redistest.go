// Package redistest starts a real redis-server for tests, on a free
// loopback port, and stops it when the test ends. Tests of the quota
// limiter and of replicas sharing quotas use it; CI installs redis-server
// (make test does), so there a missing binary fails the test instead of
// skipping it.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a real redis-server on a free loopback port, owned by one
// test. Stop and Start keep the port, so clients can watch it go and come
// back.
type Server struct {
	tb   testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// Start starts a redis-server for tb and stops it in tb.Cleanup. When
// redis-server is not installed the test is skipped, or fails when the CI
// environment variable is set.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server not found (CI is set, so the Redis tests must run): %v; install it with apt-get install -y redis-server", err)
		}
		tb.Skip("redis-server not installed: the Redis tests need it (apt-get install -y redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{tb: tb, bin: bin, port: port, dir: tb.TempDir()}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start runs the server (again) on its port and waits until it answers PING.
func (s *Server) Start() {
	s.tb.Helper()
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", s.dir)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := ping(s.Addr())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.tb.Fatalf("redis-server on %s did not answer PING: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// ping speaks RESP by hand so readiness checks start no client goroutines.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// URL is the server's address as a REDIS_URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }
