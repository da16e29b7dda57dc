package pipeline

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/catalystbot/sentiment/router"
)

// Field limits, in characters (Unicode code points). They are part of the
// contract: the proto's NewsItem comment states the same numbers.
const (
	MaxIDChars      = 128
	MaxTickerChars  = 16
	MaxTitleChars   = 1000
	MaxSummaryChars = 10000
	MaxSourceChars  = 256
	MaxURLChars     = 2048
	MaxChannelChars = 64
	// MaxAllowedTiers is one entry per tier: the lexicon and three models.
	MaxAllowedTiers = 4
)

// FieldError is bad input in one field, named by its path in the contract
// ("item.title", "options.allowed_tiers[2]"), with the limit it broke.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks a request against the contract's limits. idRequired is
// set for batch items, whose answers are matched by id. Judge runs it too,
// so an in-process caller cannot skip it; an adapter may run it first to
// refuse an item before taking it on.
func Validate(req *Request, idRequired bool) *FieldError {
	it := &req.Item
	checks := []struct {
		field    string
		value    string
		max      int
		required bool
	}{
		{"item.id", it.ID, MaxIDChars, idRequired},
		{"item.ticker", it.Ticker, MaxTickerChars, false},
		{"item.title", it.Title, MaxTitleChars, true},
		{"item.summary", it.Summary, MaxSummaryChars, false},
		{"item.source", it.Source, MaxSourceChars, false},
		{"item.url", it.URL, MaxURLChars, false},
	}
	for _, c := range checks {
		if err := CheckText(c.field, c.value, c.max, c.required); err != nil {
			return err
		}
	}
	return validateOptions(&req.Options)
}

// CheckText checks one text field: valid UTF-8, at most max characters,
// and not blank when required.
func CheckText(field, s string, max int, required bool) *FieldError {
	if !utf8.ValidString(s) {
		return &FieldError{field, "must be valid UTF-8"}
	}
	if required && strings.TrimSpace(s) == "" {
		return &FieldError{field, fmt.Sprintf("is required (1 to %d characters)", max)}
	}
	if n := utf8.RuneCountInString(s); n > max {
		return &FieldError{field, fmt.Sprintf("is %d characters; the limit is %d", n, max)}
	}
	return nil
}

func validateOptions(o *Options) *FieldError {
	if n := len(o.AllowedTiers); n > MaxAllowedTiers {
		return &FieldError{"options.allowed_tiers", fmt.Sprintf("has %d entries; the limit is %d, one per tier (%s)", n, MaxAllowedTiers, tierNames)}
	}
	for i, t := range o.AllowedTiers {
		field := fmt.Sprintf("options.allowed_tiers[%d]", i)
		if t < router.TierLexicon || t > router.TierAnthropic {
			return &FieldError{field, fmt.Sprintf("unknown tier %d; allowed: %s", int(t), tierNames)}
		}
		for j := range i {
			if o.AllowedTiers[j] == t {
				return &FieldError{field, fmt.Sprintf("%s repeats options.allowed_tiers[%d]; name each tier at most once", TierName(t), j)}
			}
		}
	}
	if p := o.MinPrescore; p != nil && (math.IsNaN(*p) || *p < 0 || *p > 1) {
		return &FieldError{"options.min_prescore", fmt.Sprintf("is %g; must be from 0 to 1", *p)}
	}
	if a := o.Alert; a != nil {
		if err := ValidateAlert("options.alert", a); err != nil {
			return err
		}
	}
	return nil
}

// ValidateAlert checks an alert's channel name and market context; field
// is where the alert sits in the request ("options.alert"). An empty
// channel is the default one, which the notifier resolves.
func ValidateAlert(field string, a *Alert) *FieldError {
	if err := CheckText(field+".channel", a.Channel, MaxChannelChars, false); err != nil {
		return err
	}
	if v := a.LastPrice; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return &FieldError{field + ".last_price", fmt.Sprintf("is %g; must be a finite number of at least 0", v)}
	}
	if v := a.ChangePct; math.IsNaN(v) || math.IsInf(v, 0) {
		return &FieldError{field + ".change_pct", fmt.Sprintf("is %g; must be a finite number", v)}
	}
	return nil
}

// tierNames lists the tiers as the contract names them.
const tierNames = "TIER_LEXICON, TIER_LOCAL, TIER_GEMINI, TIER_ANTHROPIC"

// TierName is a tier's name in the contract (TIER_LOCAL).
func TierName(t router.Tier) string {
	return "TIER_" + strings.ToUpper(t.String())
}
