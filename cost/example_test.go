package cost_test

import (
	"context"
	"fmt"
	"time"

	"github.com/catalystbot/sentiment/cost"
)

func Example() {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	totals, err := cost.New(cost.Config{DailyAlert: 5, MonthlyAlert: 50, BudgetStop: true},
		cost.WithClock(func() time.Time { return now }),
		cost.WithAlert(func(_ context.Context, c cost.Crossing) {
			fmt.Printf("alert: %s total $%.2f reached $%.2f\n", c.Period, c.Total, c.Threshold)
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer totals.Close()

	// From the router's observer, with each paid call's cost:
	totals.Add(context.Background(), "gemini", 3)
	totals.Add(context.Background(), "anthropic", 2.5)

	// Before each paid tier:
	if _, reason, stopped := totals.Stopped(); stopped {
		fmt.Println(reason)
	}
	s := totals.Snapshot(context.Background())
	fmt.Printf("today $%.2f (gemini $%.2f), backend %s\n", s.Today, s.TodayBy["gemini"], s.Backend)
	// Output:
	// alert: day total $5.50 reached $5.00
	// budget stop: $5.50 spent today, the daily limit is $5.00; paid tiers resume at 2026-12-02T00:00:00Z
	// today $5.50 (gemini $3.00), backend memory
}
