package main

import (
	"io"
	"log/slog"
)

// newLogger builds the process's logger from -v and -log-format. client-go's own messages (klog)
// are routed to it by main, so that one stream in one format carries everything.
func newLogger(c *config, out io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if c.verbosity > 0 {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(out, opts))
	}
	return slog.New(slog.NewJSONHandler(out, opts))
}
