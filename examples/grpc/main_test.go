package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDemoInMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runDemo(ctx, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	want := []string{
		"answered by greeter-1, greeter-2, greeter-3",
		"answered by greeter-1, greeter-3",
		"answered by greeter-1, greeter-3, greeter-4",
		"calls fail at once with Unavailable",
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("want a header and %d steps, got:\n%s", len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i+1], w) {
			t.Errorf("step %d: %q, want it to end with %q", i+1, lines[i+1], w)
		}
	}
	t.Logf("demo output:\n%s", out.String())
}
