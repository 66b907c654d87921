package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// discard is the registries' logger: the plugin reports through its own output.
var discard = slog.New(slog.DiscardHandler)

// table prints rows under headers as kubectl get does; wide columns only with -o wide. Rows hold
// one cell per header, then one per wide header.
type table struct {
	headers, wide []string
	rows          [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) print(out io.Writer, wide bool) error {
	w := printers.GetNewTabWriter(out)
	n := len(t.headers)
	if wide {
		n += len(t.wide)
	}
	fmt.Fprintln(w, strings.Join(append(append([]string{}, t.headers...), t.wide...)[:n], "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(w, strings.Join(r[:n], "\t"))
	}
	return w.Flush()
}

// emit prints v as JSON or YAML, or the table.
func (o *options) emit(v any, t *table) error {
	switch o.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(o.streams.Out, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = o.streams.Out.Write(b)
		return err
	}
	return t.print(o.streams.Out, o.output == "wide")
}
