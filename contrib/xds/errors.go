package xds

import (
	"context"
	"errors"
)

var (
	// ErrInvalidOption wraps every problem NewServer, NewDiscovery or Bootstrap finds in their
	// arguments; the message names the argument and the fix.
	ErrInvalidOption = errors.New("kuberegistry/xds: invalid option")
	// ErrClosed is returned by the calls of a Discovery made after its Close, and is the cause of
	// the error its watchers' Next return once it is closed.
	ErrClosed = errors.New("kuberegistry/xds: discovery closed: build a new one to discover again")
	// ErrAlreadyRun is returned by a second call to Server.Run: a Server follows its catalogs once.
	ErrAlreadyRun = errors.New("kuberegistry/xds: server already run: build a new Server to run again")
)

// errWatcherStopped is the cause recorded when Stop ends a watcher.
var errWatcherStopped = errors.New("Stop was called")

// stoppedError is what Next returns once a watcher has ended. It always matches
// context.Canceled, as the kuberegistry.Watcher contract asks, and unwraps to the cause
// (errWatcherStopped, ErrClosed or the end of the Watch's context).
type stoppedError struct{ cause error }

func (e *stoppedError) Error() string { return "kuberegistry/xds: watcher stopped: " + e.cause.Error() }

func (e *stoppedError) Is(target error) bool { return target == context.Canceled }

func (e *stoppedError) Unwrap() error { return e.cause }
