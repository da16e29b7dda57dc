package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

const alertSynopsis = `sentimentctl alert "headline" [--ticker T] [--price P] [--change PCT] [--channel C] [--id ID] [--summary S]

Posts a progressive Discord alert through the server's Alert call: the
preliminary post (the lexicon's leaning, "AI Analysis: Processing...")
goes out at once, and the server edits it with the model's answer in the
background. Prints the channel, the Discord message id, how the post went
out (preliminary with an edit to follow, complete, or a duplicate of an
earlier alert of the same item) and the preliminary answer. --channel is a
channel name the server knows (SENTIMENT_DISCORD_WEBHOOKS); empty is the
server's SENTIMENT_ALERT_CHANNEL. --json prints the AlertResponse.`

func (c *cli) alert(ctx context.Context, g *globals, args []string) error {
	fs := commandFlags("alert", g)
	ticker := fs.String("ticker", "", "the item's `ticker`, e.g. ACME")
	summary := fs.String("summary", "", "the item's summary `text`")
	id := fs.String("id", "", "the item's `id` (an item alerts once per channel)")
	channel := fs.String("channel", "", "the alert `channel`, a name the server configures; empty: the server's default")
	price := fs.Float64("price", 0, "the last `price`, shown in the post")
	change := fs.Float64("change", 0, "the change in `percent`, shown in the post")
	pos, err := c.parseCommand(fs, g, args, alertSynopsis)
	if err != nil {
		return err
	}
	title := strings.TrimSpace(strings.Join(pos, " "))
	if title == "" {
		return usageErr("alert: a headline is required")
	}
	if math.IsNaN(*price) || math.IsInf(*price, 0) || *price < 0 {
		return usageErr("alert: --price %v: must be a number, 0 or more", *price)
	}
	if math.IsNaN(*change) || math.IsInf(*change, 0) {
		return usageErr("alert: --change %v: must be a number", *change)
	}

	conn, client, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := g.unaryCtx(ctx)
	defer cancel()
	req := &pb.AlertRequest{
		Item:  &pb.NewsItem{Id: *id, Ticker: *ticker, Title: title, Summary: *summary},
		Alert: &pb.AlertOptions{Channel: *channel, LastPrice: *price, ChangePct: *change},
	}
	var p peer.Peer
	resp, err := client.Alert(ctx, req, grpc.Peer(&p))
	if err != nil {
		return callErr("alert", g.addr, err, &p)
	}
	if g.json {
		return writeJSONLine(c.stdout, resp)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "channel\t%s\n", resp.GetChannel())
	fmt.Fprintf(tw, "message id\t%s\n", orDash(resp.GetMessageId()))
	fmt.Fprintf(tw, "posted\t%s\n", postedWords(resp))
	if err := tw.Flush(); err != nil {
		return err
	}
	if resp.GetPreliminary() == nil {
		return nil
	}
	var b bytes.Buffer
	if err := writeAnswer(&b, resp.GetPreliminary()); err != nil {
		return err
	}
	out := "preliminary answer:\n"
	for l := range strings.Lines(b.String()) {
		out += "  " + l
	}
	_, err = io.WriteString(c.stdout, out)
	return err
}

// postedWords says how the alert went out.
func postedWords(r *pb.AlertResponse) string {
	switch {
	case r.GetDuplicate():
		return "no: the item alerted on this channel already (the message above is the first one)"
	case r.GetComplete():
		return "complete: the final answer went out in the post, no edit follows"
	}
	return "preliminary: the model's answer follows as an edit of this message"
}
