package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemoInMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, ""); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("want a header and 5 steps, got:\n%s", out.String())
	}
	last := lines[5]
	for _, want := range []string{"greeter-1 http://10.0.0.1:8080", "greeter-3 http://10.0.0.3:8080", "greeter-4 http://10.0.0.4:8080"} {
		if !strings.Contains(last, want) {
			t.Errorf("last step %q lacks %q", last, want)
		}
	}
	if strings.Contains(last, "greeter-2") {
		t.Errorf("the terminating pod is still served: %q", last)
	}
}
