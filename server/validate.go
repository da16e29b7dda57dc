package server

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// Field limits, in characters (Unicode code points). They are part of the
// contract: the proto's NewsItem comment states the same numbers.
const (
	maxIDChars      = 128
	maxTickerChars  = 16
	maxTitleChars   = 1000
	maxSummaryChars = 10000
	maxSourceChars  = 256
	maxURLChars     = 2048
	maxChannelChars = 64
	// maxAllowedTiers is one entry per tier the contract defines.
	maxAllowedTiers = int(pb.Tier_TIER_ANTHROPIC)
)

// fieldError is bad input in one field. It becomes INVALID_ARGUMENT with a
// BadRequest detail naming the field, or an ItemError on a batch stream.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// status converts the error for the wire.
func (e *fieldError) status() *status.Status {
	st := status.New(codes.InvalidArgument, e.Error())
	if d, err := st.WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: e.field, Description: e.msg}},
	}); err == nil {
		return d
	}
	return st
}

func (e *fieldError) itemError() *pb.ItemError {
	return &pb.ItemError{Code: int32(codes.InvalidArgument), Message: e.Error(), Field: e.field}
}

// checkText checks one text field: valid UTF-8, at most max characters, and
// not blank when required.
func checkText(field, s string, max int, required bool) *fieldError {
	if !utf8.ValidString(s) {
		return &fieldError{field, "must be valid UTF-8"}
	}
	if required && strings.TrimSpace(s) == "" {
		return &fieldError{field, fmt.Sprintf("is required (1 to %d characters)", max)}
	}
	if n := utf8.RuneCountInString(s); n > max {
		return &fieldError{field, fmt.Sprintf("is %d characters; the limit is %d", n, max)}
	}
	return nil
}

// validateItem checks a news item. idRequired is set on batch streams,
// where results are matched to items by id.
func validateItem(item *pb.NewsItem, idRequired bool) *fieldError {
	if item == nil {
		return &fieldError{"item", "is required"}
	}
	checks := []struct {
		field    string
		value    string
		max      int
		required bool
	}{
		{"item.id", item.GetId(), maxIDChars, idRequired},
		{"item.ticker", item.GetTicker(), maxTickerChars, false},
		{"item.title", item.GetTitle(), maxTitleChars, true},
		{"item.summary", item.GetSummary(), maxSummaryChars, false},
		{"item.source", item.GetSource(), maxSourceChars, false},
		{"item.url", item.GetUrl(), maxURLChars, false},
	}
	for _, c := range checks {
		if err := checkText(c.field, c.value, c.max, c.required); err != nil {
			return err
		}
	}
	if ts := item.GetPublishedAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return &fieldError{"item.published_at", "must be a valid timestamp between years 1 and 9999"}
		}
	}
	return nil
}

// validateOptions checks the options; nil options are the defaults.
// Enum values the contract does not define are rejected rather than
// silently treated as the default.
func validateOptions(o *pb.ClassifyOptions) *fieldError {
	if o == nil {
		return nil
	}
	if _, ok := pb.Priority_name[int32(o.GetPriority())]; !ok {
		return &fieldError{"options.priority", fmt.Sprintf("unknown value %d; allowed: %s", o.GetPriority(), enumNames(pb.Priority_name))}
	}
	tiers := o.GetAllowedTiers()
	if n := len(tiers); n > maxAllowedTiers {
		return &fieldError{"options.allowed_tiers", fmt.Sprintf("has %d entries; the limit is %d, one per tier (%s)", n, maxAllowedTiers, enumNames(pb.Tier_name))}
	}
	seen := make(map[pb.Tier]int, len(tiers))
	for i, t := range tiers {
		field := fmt.Sprintf("options.allowed_tiers[%d]", i)
		switch _, known := pb.Tier_name[int32(t)]; {
		case t == pb.Tier_TIER_UNSPECIFIED:
			return &fieldError{field, "TIER_UNSPECIFIED is not a tier; allowed: " + enumNames(pb.Tier_name)}
		case !known:
			return &fieldError{field, fmt.Sprintf("unknown value %d; allowed: %s", t, enumNames(pb.Tier_name))}
		}
		if j, dup := seen[t]; dup {
			return &fieldError{field, fmt.Sprintf("%s repeats options.allowed_tiers[%d]; name each tier at most once", t, j)}
		}
		seen[t] = i
	}
	if o.MinPrescore != nil {
		if v := o.GetMinPrescore(); math.IsNaN(v) || v < 0 || v > 1 {
			return &fieldError{"options.min_prescore", fmt.Sprintf("is %g; must be from 0 to 1", v)}
		}
	}
	if a := o.GetAlert(); a != nil {
		if err := checkText("options.alert.channel", a.GetChannel(), maxChannelChars, true); err != nil {
			return err
		}
		if v := a.GetLastPrice(); math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return &fieldError{"options.alert.last_price", fmt.Sprintf("is %g; must be a finite number of at least 0", v)}
		}
		if v := a.GetChangePct(); math.IsNaN(v) || math.IsInf(v, 0) {
			return &fieldError{"options.alert.change_pct", fmt.Sprintf("is %g; must be a finite number", v)}
		}
	}
	return nil
}

// enumNames lists an enum's names without its UNSPECIFIED zero value,
// in number order.
func enumNames(m map[int32]string) string {
	names := make([]string, 0, len(m))
	for i := int32(1); i < int32(len(m)); i++ {
		if n, ok := m[i]; ok {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// validateClassify checks a unary request.
func validateClassify(r *pb.ClassifyRequest) *fieldError {
	if err := codecError(r); err != nil {
		return err
	}
	if err := validateItem(r.GetItem(), false); err != nil {
		return err
	}
	return validateOptions(r.GetOptions())
}

// validateBatchItem checks one item of a batch stream.
func validateBatchItem(r *pb.ClassifyBatchRequest) *fieldError {
	if err := codecError(r); err != nil {
		return err
	}
	if err := validateItem(r.GetItem(), true); err != nil {
		return err
	}
	return validateOptions(r.GetOptions())
}
