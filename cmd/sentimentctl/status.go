package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

const (
	gpuSynopsis = `sentimentctl gpu

Shows GPUStatus: each card's VRAM, the pressure level, the local model
(loaded, warm), whether the local tier admits work, the last cleanup and
its reason, and the GPU queue. --json prints the response as protojson.`

	statsSynopsis = `sentimentctl stats

Shows the dashboard once: requests, each tier's breaker, failures in a row
and errors in the last hour, quota bars per provider and window, the GPU,
cache, prefilter, alerts, cost today and this month against the alert
thresholds, the budget stop and the usage log. --json prints
{"stats":<StatsResponse>,"gpu":<GPUStatusResponse>} as protojson.`

	watchSynopsis = `sentimentctl watch [--interval 2s] [--count N]

Shows the dashboard every --interval until Ctrl-C, or --count times. On a
terminal each one replaces the last; otherwise they follow one another,
and with --json each is one line.`
)

const defaultInterval = 2 * time.Second

func (c *cli) gpu(ctx context.Context, g *globals, args []string) error {
	fs := commandFlags("gpu", g)
	pos, err := c.parseCommand(fs, g, args, gpuSynopsis)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("gpu: takes no arguments, got %q", pos)
	}
	conn, client, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	gs, err := g.gpuStatus(ctx, client)
	if err != nil {
		return err
	}
	if g.json {
		return writeJSONLine(c.stdout, gs)
	}
	writeGPU(c.stdout, gs, c.now())
	return nil
}

func (c *cli) stats(ctx context.Context, g *globals, args []string) error {
	fs := commandFlags("stats", g)
	pos, err := c.parseCommand(fs, g, args, statsSynopsis)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("stats: takes no arguments, got %q", pos)
	}
	conn, client, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	snap, err := g.snapshot(ctx, client)
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(snap.render(g.json, c.now()))
	return err
}

func (c *cli) watch(ctx context.Context, g *globals, args []string) error {
	fs := commandFlags("watch", g)
	interval := fs.Duration("interval", defaultInterval, "time between refreshes")
	count := fs.Int("count", 0, "stop after this many refreshes; 0: until Ctrl-C")
	pos, err := c.parseCommand(fs, g, args, watchSynopsis)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("watch: takes no arguments, got %q", pos)
	}
	if *interval <= 0 {
		return usageErr("watch: --interval %s: must be above 0", *interval)
	}
	if *count < 0 {
		return usageErr("watch: --count %d: must be 0 or more", *count)
	}
	conn, client, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	redraw := isTerminal(c.stdout) && !g.json
	for n := 1; ; n++ {
		snap, err := g.snapshot(ctx, client)
		switch {
		case ctx.Err() != nil:
			return nil // Ctrl-C: a normal end
		case err != nil && n == 1:
			return err
		case err != nil:
			// The server may be restarting: say so and keep watching.
			fmt.Fprintf(c.stderr, "sentimentctl: %s: %v\n", c.now().Format(time.DateTime), err)
		default:
			out := snap.render(g.json, c.now())
			if redraw {
				// Home the cursor and clear the screen: the dashboard
				// replaces the last one in place.
				out = append([]byte("\x1b[H\x1b[2J"), out...)
			} else if !g.json && n > 1 {
				out = append([]byte("\n"), out...)
			}
			if _, err := c.stdout.Write(out); err != nil {
				return err
			}
		}
		if *count > 0 && n >= *count {
			return nil
		}
		t := time.NewTimer(*interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (g *globals) gpuStatus(ctx context.Context, client pb.SentimentServiceClient) (*pb.GPUStatusResponse, error) {
	ctx, cancel := g.unaryCtx(ctx)
	defer cancel()
	var p peer.Peer
	gs, err := client.GPUStatus(ctx, &pb.GPUStatusRequest{}, grpc.Peer(&p))
	if err != nil {
		return nil, callErr("gpu status", g.addr, err, &p)
	}
	return gs, nil
}

// snapshot is what the dashboard shows: Stats, and GPUStatus or why it
// failed.
type snapshot struct {
	stats  *pb.StatsResponse
	gpu    *pb.GPUStatusResponse
	gpuErr error
}

// snapshot asks for Stats and GPUStatus. Stats failing fails it; a failed
// GPUStatus is shown in its section.
func (g *globals) snapshot(ctx context.Context, client pb.SentimentServiceClient) (*snapshot, error) {
	sctx, cancel := g.unaryCtx(ctx)
	defer cancel()
	var p peer.Peer
	st, err := client.Stats(sctx, &pb.StatsRequest{}, grpc.Peer(&p))
	if err != nil {
		return nil, callErr("stats", g.addr, err, &p)
	}
	s := &snapshot{stats: st}
	s.gpu, s.gpuErr = g.gpuStatus(ctx, client)
	return s, nil
}

// render is the dashboard as text, or one line of JSON:
// {"stats":...,"gpu":...} with "gpu_error" in place of "gpu" when
// GPUStatus failed.
func (s *snapshot) render(jsonOut bool, now time.Time) []byte {
	var b bytes.Buffer
	if !jsonOut {
		writeDashboard(&b, s.stats, s.gpu, s.gpuErr, now)
		return b.Bytes()
	}
	var out struct {
		Stats    json.RawMessage `json:"stats"`
		GPU      json.RawMessage `json:"gpu,omitempty"`
		GPUError string          `json:"gpu_error,omitempty"`
	}
	// Both are compact JSON already (or nil, written as null), so
	// marshalling them again cannot fail.
	out.Stats, _ = marshalJSON(s.stats)
	if s.gpu != nil {
		out.GPU, _ = marshalJSON(s.gpu)
	} else if s.gpuErr != nil {
		out.GPUError = s.gpuErr.Error()
	}
	line, _ := json.Marshal(out)
	return append(line, '\n')
}
