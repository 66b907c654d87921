package main

import (
	"fmt"
	"io"
)

// printBootstrap writes the GRPC_XDS_BOOTSTRAP file that points grpc-go clients at the tier
// (-server-uri), for a ConfigMap the clients mount. parseFlags has built it with xds.Bootstrap.
func printBootstrap(c *config, out io.Writer) error {
	b := c.bootstrap
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	_, err := out.Write(b)
	if err != nil {
		return fmt.Errorf("-print-bootstrap: %w", err)
	}
	return nil
}
