// Package redistest starts a real redis-server for tests, on a free
// loopback port, and stops it when the test ends. Tests of the quota
// limiter and of replicas sharing quotas use it; CI installs redis-server
// (make test does), so there a missing binary fails the test instead of
// skipping it.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a real redis-server on a free loopback port, owned by one
// test. Stop and Start keep the port, so clients can watch it go and come
// back.
type Server struct {
	tb      testing.TB
	bin     string
	port    int
	dir     string
	cluster bool
	cmd     *exec.Cmd
	// sentinel watches the server as the primary "primary", when started
	// with StartSentinel; Stop and Start leave it running.
	sentinel     *exec.Cmd
	sentinelPort int
}

// Start starts a redis-server for tb and stops it in tb.Cleanup. When
// redis-server is not installed the test is skipped, or fails when the CI
// environment variable is set.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, false)
}

// StartCluster starts a one-node Redis Cluster owning every slot. One node
// is enough to check what a Cluster refuses: a script or a transaction
// whose keys hash to different slots fails with CROSSSLOT on one node as
// on many.
func StartCluster(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, true)
}

// StartSentinel starts a server and one Sentinel watching it as the
// primary "primary"; URL names the Sentinel, so clients find the server
// through it. Stop and Start stop and start the server, not the Sentinel.
func StartSentinel(tb testing.TB) *Server {
	tb.Helper()
	s := start(tb, false)
	s.sentinelPort = freePort(tb)
	conf := filepath.Join(s.dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor primary 127.0.0.1 %d 1\n", s.sentinelPort, s.port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatalf("writing the Sentinel's configuration: %v", err)
	}
	cmd := exec.Command(s.bin, conf, "--sentinel", "--dir", s.dir)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting redis-server --sentinel: %v", err)
	}
	s.sentinel = cmd
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.sentinelPort))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := command(addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "primary")
		if err == nil && got == "*2" { // an array: host and port
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the Sentinel on %s does not know the primary: %q %v", addr, got, err)
		}
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func start(tb testing.TB, cluster bool) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server not found (CI is set, so the Redis tests must run): %v; install it with apt-get install -y redis-server", err)
		}
		tb.Skip("redis-server not installed: the Redis tests need it (apt-get install -y redis-server)")
	}
	s := &Server{tb: tb, bin: bin, port: freePort(tb), dir: tb.TempDir(), cluster: cluster}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start runs the server (again) on its port and waits until it answers PING.
func (s *Server) Start() {
	s.tb.Helper()
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", s.dir}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := ping(s.Addr())
		if err == nil && s.cluster {
			err = s.claimSlots()
		}
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

// claimSlots gives the one node every slot (the first time; nodes.conf
// keeps them across restarts) and reports an error until the cluster
// says it is ok.
func (s *Server) claimSlots() error {
	info, err := command(s.Addr(), "CLUSTER", "INFO")
	if err != nil {
		return err
	}
	if strings.Contains(info, "cluster_state:ok") {
		return nil
	}
	if strings.Contains(info, "cluster_slots_assigned:0") {
		if _, err := command(s.Addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
			return err
		}
	}
	return fmt.Errorf("cluster not ready: %s", info)
}

// command sends one command and returns its reply: a simple or bulk
// string, or an error for an error reply.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	var req strings.Builder
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(req.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("%s %s", strings.Join(args, " "), line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return strings.TrimPrefix(line, "+"), nil
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

// URL is the server's address as a REDIS_URL; a Cluster's names its node
// again as an addr parameter, the form that makes REDIS_URL a Cluster.
func (s *Server) URL() string {
	if s.sentinel != nil {
		return fmt.Sprintf("redis://127.0.0.1:%d/0?master_name=primary", s.sentinelPort)
	}
	if s.cluster {
		return "redis://" + s.Addr() + "?addr=" + s.Addr()
	}
	return "redis://" + s.Addr() + "/0"
}
