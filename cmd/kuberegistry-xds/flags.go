package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// config is the command line, parsed and checked. Nothing in it has made a request.
type config struct {
	kubeconfig    string   // "": in-cluster, else $KUBECONFIG or ~/.kube/config
	namespaces    []string // nil: the default scope (see discoveryScope)
	allNamespaces bool
	selector      string
	pods          bool // serve registered pods (a Registry)
	services      bool // serve plain Services (an EndpointSliceDiscovery)

	xdsListen  string
	tlsCert    string
	tlsKey     string
	tls        *tls.Certificate // loaded from tlsCert and tlsKey; nil: plaintext
	httpListen string

	maxStale        time.Duration
	shutdownTimeout time.Duration

	printBootstrap bool
	serverURIs     []string
	nodeID         string
	bootstrapTLS   bool   // clients connect with TLS
	bootstrapCA    string // the CA file clients check the tier's certificate with; "": system roots
	bootstrap      []byte // the bootstrap JSON, built while checking the flags

	verbosity int
	logFormat string
}

// Defaults, as -h shows them and the README documents them.
const (
	defaultXDSListen       = ":18000"
	defaultHTTPListen      = ":8080"
	defaultMaxStale        = 2 * time.Minute
	defaultShutdownTimeout = 10 * time.Second
)

// usageHeader is what -h prints above the flags.
const usageHeader = `kuberegistry-xds serves the services kuberegistry discovers in Kubernetes over xDS (ADS), so
that gRPC clients dial xds:///<service> with no Kubernetes credentials and no kuberegistry code.

Usage:
  kuberegistry-xds [flags]                                    serve
  kuberegistry-xds -print-bootstrap -server-uri URI[,URI...]  print a GRPC_XDS_BOOTSTRAP file and exit

Kubernetes configuration: -kubeconfig if given, else the pod's service account (in-cluster),
else $KUBECONFIG or ~/.kube/config. Discovery scope: -namespaces or -all-namespaces if given,
else the pod's own namespace (POD_NAMESPACE, else the service account's namespace file), else
the kubeconfig context's namespace, else "default".

HTTP endpoints on -http-listen: /healthz (liveness), /readyz (synced and not stale), /metrics.

Flags:
`

// errHelp is returned by parseFlags after printing the usage for -h.
var errHelp = flag.ErrHelp

// parseFlags parses args (without the program name) and checks every flag, without any request
// to the cluster. Usage goes to out for -h; an error names the flag and the fix.
func parseFlags(args []string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("kuberegistry-xds", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, and -h is printed below
	var namespaces, serverURIs string
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "path to a kubeconfig (default: the in-cluster service account, else $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&namespaces, "namespaces", "", "comma-separated namespaces to discover, one watch each; a Role in each suffices (default: the pod's own namespace)")
	fs.BoolVar(&c.allNamespaces, "all-namespaces", false, "discover every namespace with one watch; needs a ClusterRole")
	fs.StringVar(&c.selector, "selector", "", "label selector (kubectl -l syntax) on registered pods and, with -services, on Services (default: everything)")
	fs.BoolVar(&c.pods, "pods", true, "serve the services registered on pods (needs list, watch on pods)")
	fs.BoolVar(&c.services, "services", false, "also serve plain Kubernetes Services from their EndpointSlices (needs list, watch on endpointslices); registered pods win a name both have")
	fs.StringVar(&c.xdsListen, "xds-listen", defaultXDSListen, "address to serve xDS (gRPC) on")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate to serve xDS over TLS, with -tls-key (default: plaintext)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&c.httpListen, "http-listen", defaultHTTPListen, "address to serve /healthz, /readyz and /metrics on")
	fs.DurationVar(&c.maxStale, "max-stale", defaultMaxStale, "how long listing or watching may fail before /readyz fails")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGTERM, how long to let open xDS streams end before closing them")
	fs.BoolVar(&c.printBootstrap, "print-bootstrap", false, "print the GRPC_XDS_BOOTSTRAP JSON for clients of -server-uri and exit")
	fs.StringVar(&serverURIs, "server-uri", "", "with -print-bootstrap: comma-separated gRPC targets of this tier, e.g. dns:///kuberegistry-xds.shop.svc:18000")
	fs.StringVar(&c.nodeID, "node-id", "", "with -print-bootstrap: the xDS node id clients send; the tier serves every node the same (default \"kuberegistry-xds-client\")")
	fs.BoolVar(&c.bootstrapTLS, "bootstrap-tls", false, "with -print-bootstrap: clients connect with TLS, checking the tier's certificate (-tls-cert) against the system's roots (default: plaintext)")
	fs.StringVar(&c.bootstrapCA, "bootstrap-ca", "", "with -print-bootstrap: clients connect with TLS and check the tier's certificate against this CA file, a path in the client's file system")
	fs.IntVar(&c.verbosity, "v", 0, "log verbosity: 0 logs info and above, 1 or more adds debug")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out)
			fmt.Fprint(out, usageHeader)
			fs.PrintDefaults()
			return nil, errHelp
		}
		return nil, fmt.Errorf("%v (run with -h for the flags)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: every setting is a flag (run with -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.namespaces = splitList(namespaces)
	c.serverURIs = splitList(serverURIs)
	if err := c.validate(set); err != nil {
		return nil, err
	}
	return c, nil
}

// validate checks the flags together and reports every problem at once. set holds the flags
// given on the command line.
func (c *config) validate(set map[string]bool) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.printBootstrap {
		if len(c.serverURIs) == 0 {
			return errors.New("-print-bootstrap needs -server-uri: the gRPC target clients reach this tier at, e.g. dns:///kuberegistry-xds.shop.svc:18000")
		}
		// The library checks the addresses; building the file here makes its errors flag errors.
		b, err := xds.Bootstrap(xds.BootstrapConfig{ServerURIs: c.serverURIs, NodeID: c.nodeID,
			Insecure: !c.bootstrapTLS && c.bootstrapCA == "", CAFile: c.bootstrapCA})
		if err != nil {
			return fmt.Errorf("-server-uri, -node-id, -bootstrap-tls or -bootstrap-ca: %w", err)
		}
		c.bootstrap = b
		return nil
	}
	for _, name := range []string{"server-uri", "node-id", "bootstrap-tls", "bootstrap-ca"} {
		if set[name] {
			bad("-%s is for -print-bootstrap only: add -print-bootstrap, or drop -%s", name, name)
		}
	}

	if set["namespaces"] && len(c.namespaces) == 0 {
		bad("-namespaces is empty: name at least one namespace, use -all-namespaces, or drop it for the pod's own namespace")
	}
	if c.allNamespaces && len(c.namespaces) > 0 {
		bad("-all-namespaces and -namespaces exclude each other: keep one")
	}
	seen := map[string]bool{}
	for _, ns := range c.namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			bad("-namespaces: %q is not a namespace name: %s", ns, msgs[0])
		}
		if seen[ns] {
			bad("-namespaces: %q is named twice", ns)
		}
		seen[ns] = true
	}
	if _, err := labels.Parse(c.selector); err != nil {
		bad("-selector %q: %v (the syntax of kubectl -l, e.g. tier=backend,track!=canary)", c.selector, err)
	}
	if !c.pods && !c.services {
		bad("-pods=false without -services serves nothing: keep -pods, add -services, or both")
	}

	if err := checkListen("xds-listen", c.xdsListen); err != nil {
		errs = append(errs, err)
	}
	if err := checkListen("http-listen", c.httpListen); err != nil {
		errs = append(errs, err)
	}
	if c.xdsListen == c.httpListen && !strings.HasSuffix(c.xdsListen, ":0") {
		bad("-xds-listen and -http-listen are both %q: give them different ports", c.xdsListen)
	}
	switch {
	case (c.tlsCert == "") != (c.tlsKey == ""):
		bad("-tls-cert and -tls-key go together: give both for TLS, or neither for plaintext")
	case c.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			bad("-tls-cert %q and -tls-key %q: %v", c.tlsCert, c.tlsKey, err)
		} else {
			c.tls = &cert
		}
	}

	if c.maxStale <= 0 {
		bad("-max-stale %v: give a positive duration, e.g. 2m", c.maxStale)
	}
	if c.shutdownTimeout <= 0 {
		bad("-shutdown-timeout %v: give a positive duration, e.g. 10s", c.shutdownTimeout)
	}
	if c.verbosity < 0 {
		bad("-v %d: give 0 (info) or more (debug)", c.verbosity)
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		bad("-log-format %q: give json or text", c.logFormat)
	}
	return errors.Join(errs...)
}

// checkListen checks that addr is host:port with a numeric port, so that a typo fails before any
// request rather than when the listener opens.
func checkListen(flagName, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-%s %q: want host:port or :port, e.g. :18000: %v", flagName, addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("-%s %q: the port must be a number from 0 to 65535", flagName, addr)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping spaces and empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
