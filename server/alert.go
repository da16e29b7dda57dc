package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/notifier"
	"github.com/catalystbot/sentiment/pipeline"
)

// Alert posts a progressive Discord alert for one item and returns as
// soon as the preliminary post exists; the judgement and the edit finish
// in the background, whether or not the caller stays.
func (s *Server) Alert(ctx context.Context, req *pb.AlertRequest) (*pb.AlertResponse, error) {
	r, ferr := s.requestOf(req, req.GetItem(), req.GetOptions(), false)
	if ferr == nil && r.Options.Alert != nil {
		ferr = newFieldError("options.alert", "is not for Alert: give the channel and market context in alert")
	}
	if ferr == nil {
		r.Options.Alert, ferr = s.alertOf(req.GetAlert())
	}
	if ferr != nil {
		s.stats.invalid.Add(1)
		return nil, ferr.status().Err()
	}
	s.stats.alertCalls.Add(1)
	res, err := s.alerts.Alert(ctx, s.pipe, r)
	var perr *notifier.PostError
	switch {
	case errors.As(err, &perr) && perr.Kind == "broken":
		return nil, status.Error(codes.FailedPrecondition, perr.Error())
	case errors.As(err, &perr) && perr.Kind == "refused":
		return nil, statusOf(perr.Err)
	case errors.As(err, &perr):
		return nil, status.Error(codes.Unavailable, perr.Error())
	case errors.Is(err, notifier.ErrStopping):
		return nil, status.Error(codes.Unavailable, err.Error())
	case err != nil:
		return nil, statusOf(err)
	}
	out := &pb.AlertResponse{Channel: res.Channel, MessageId: res.MessageID, Duplicate: res.Duplicate, Complete: res.Complete}
	if !res.Duplicate {
		out.Preliminary = answerPB(&res.Preliminary)
	}
	return out, nil
}

// alertOf converts and checks an AlertRequest's alert: its channel is a
// configured one, or empty for the default.
func (s *Server) alertOf(a *pb.AlertOptions) (*pipeline.Alert, *fieldError) {
	out := &pipeline.Alert{Channel: a.GetChannel(), LastPrice: a.GetLastPrice(), ChangePct: a.GetChangePct()}
	if ferr := pipeline.ValidateAlert("alert", out); ferr != nil {
		return nil, &fieldError{ferr}
	}
	ch, ferr := s.channel("alert.channel", out.Channel)
	if ferr != nil {
		return nil, ferr
	}
	out.Channel = ch
	return out, nil
}

// channel resolves a channel name an alert gives (empty: the default).
func (s *Server) channel(field, name string) (string, *fieldError) {
	if s.alerts == nil {
		return "", newFieldError(field, "no Discord channel is configured on this server (SENTIMENT_DISCORD_WEBHOOKS)")
	}
	ch, ferr := s.alerts.Channel(field, name)
	if ferr != nil {
		return "", &fieldError{ferr}
	}
	return ch, nil
}

// alertStats reports the notifier's counts; nil without one.
func (s *Server) alertStats() *pb.AlertStats {
	if s.alerts == nil {
		return nil
	}
	st := s.alerts.Stats()
	return &pb.AlertStats{
		Posted:         st.Posted,
		Edited:         st.Edited,
		TimedOut:       st.TimedOut,
		Duplicates:     st.Duplicates,
		Failed:         st.Failed,
		BrokenChannels: st.Broken,
		Pending:        uint64(st.Pending),
		Complete:       st.Complete,
	}
}

// ListAlertChannels names the configured channels and their webhook ids;
// never a URL or a token.
func (s *Server) ListAlertChannels(context.Context, *pb.ListAlertChannelsRequest) (*pb.ListAlertChannelsResponse, error) {
	out := &pb.ListAlertChannelsResponse{}
	if s.alerts == nil {
		return out, nil
	}
	for _, c := range s.alerts.Channels() {
		out.Channels = append(out.Channels, &pb.AlertChannel{Name: c.Name, WebhookId: c.WebhookID, Default: c.Default, Broken: c.Broken})
	}
	return out, nil
}
