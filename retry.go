package kuberegistry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

const (
	retryInitialDelay = 100 * time.Millisecond
	retryMaxDelay     = 5 * time.Second
)

// retryTransient calls do until it succeeds, fails for good, ctx ends or closed ends. A failure is
// transient when a retry can succeed: a conflict, throttling (honouring Retry-After), a server
// error or timeout, or a broken connection.
func retryTransient(ctx, closed context.Context, do func() error) error {
	delay := retryInitialDelay
	for {
		err := do()
		if err == nil || !transient(err) {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1) // jitter spreads a fleet's retries
		if seconds, ok := apierrors.SuggestsClientDelay(err); ok {
			wait = time.Duration(seconds) * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-closed.Done():
			t.Stop()
			return ErrClosed
		}
		delay = min(2*delay, retryMaxDelay)
	}
}

// transient reports whether a request that failed with err may succeed if tried again.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's context: it will not get better
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // no answer from the server: a connection problem
	}
	switch code := status.Status().Code; {
	case code == http.StatusConflict, code == http.StatusTooManyRequests:
		return true
	case code >= 500:
		return true
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)
}
