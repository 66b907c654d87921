package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
)

// The log says when an informer starts failing, when its failure changes and when it recovers,
// once each; an RBAC refusal in the library's PermissionError words, at error level.
func TestStatusLogOncePerChange(t *testing.T) {
	var out bytes.Buffer
	l := newStatusLog(slog.New(slog.NewTextHandler(&out, nil)))
	since := time.Date(2026, 11, 29, 17, 33, 5, 0, time.UTC)
	denied := &kuberegistry.PermissionError{Verb: "watch", Resource: "pods", Namespace: "shop", Err: errors.New("forbidden")}
	status := func(err error) kuberegistry.Status {
		in := kuberegistry.InformerStatus{Namespace: "shop", Resource: "pods", Watching: err == nil, LastError: err}
		if err != nil {
			in.FailingSince = since
		}
		return kuberegistry.Status{Synced: true, Informers: []kuberegistry.InformerStatus{in}}
	}
	steps := []struct {
		err  error
		want string // "" for no line
	}{
		{nil, ""},
		{errors.New("connection refused"), `level=WARN msg="listing or watching fails; serving the last known instances" source=pods namespace=shop resource=pods failing_since=2026-11-29T17:33:05Z error="connection refused"`},
		{errors.New("connection refused"), ""},
		{denied, `level=ERROR msg="RBAC refused listing or watching; serving the last known instances" source=pods namespace=shop resource=pods failing_since=2026-11-29T17:33:05Z error="kuberegistry: not allowed to watch pods in namespace \"shop\" (a Role and RoleBinding there): grant verb \"watch\" on resource \"pods\" to this pod's service account: forbidden"`},
		{denied, ""},
		{nil, `level=INFO msg="listing and watching again" source=pods namespace=shop resource=pods`},
		{nil, ""},
	}
	for i, s := range steps {
		out.Reset()
		l.observe("pods", status(s.err))
		got := strings.TrimSpace(out.String())
		if i := strings.Index(got, "level="); i >= 0 {
			got = got[i:] // drop the time
		}
		if got != s.want {
			t.Errorf("step %d: logged\n%s\nwant\n%s", i, got, s.want)
		}
	}
}
