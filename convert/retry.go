package convert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Retry says how often a failed registry or I/O step is tried again, as skopeo's --retry-times
// and --retry-delay do. Steps are retried whole: a layer is read and encoded again from its start,
// a blob is uploaded again from its temporary file, so a retry can never mix two attempts.
type Retry struct {
	Times int
	// Delay before the first retry; it doubles with every further one (0: 1s).
	Delay time.Duration
}

// permanent reports errors that another attempt cannot fix: refusals, cancellation, and the
// registry saying no (unauthorized, denied, unknown, invalid).
func permanent(err error) bool {
	if _, ok := IsRefusal(err); ok {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotImplemented) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unauthorized", "denied", "manifest unknown", "name unknown", "not found", "invalid", "no such file"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// retry runs step until it succeeds, fails permanently, or the retries are used up.
func (c *converter) retry(ctx context.Context, what string, step func() error) error {
	delay := c.o.Retry.Delay
	if delay <= 0 {
		delay = time.Second
	}
	for attempt := 0; ; attempt++ {
		err := step()
		if err == nil || attempt >= c.o.Retry.Times || permanent(err) || ctx.Err() != nil {
			if err != nil && attempt > 0 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return err
		}
		c.mu.Lock()
		c.report.Retries = append(c.report.Retries, fmt.Sprintf("%s: attempt %d failed: %v", what, attempt+1, err))
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}
