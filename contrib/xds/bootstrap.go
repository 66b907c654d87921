package xds

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

// BootstrapConfig says where grpc-go finds the tier; Bootstrap turns it into grpc-go's bootstrap
// JSON.
type BootstrapConfig struct {
	// ServerURIs are the addresses of the tier, "host:port", such as
	// "kuberegistry-xds.infra.svc:18000". grpc-go uses the first and falls back to the next ones,
	// in order, when it cannot reach it. At least one is required.
	ServerURIs []string
	// NodeID identifies the client to the tier, which serves every node the same: the id only
	// names the client in the tier's logs. Default: "kuberegistry-xds-client" (grpc-go requires
	// one); the pod's name, from the Downward API, is a good choice.
	NodeID string
	// Insecure connects to the tier in plaintext, inside a trusted network. Otherwise grpc-go
	// connects with TLS (the bootstrap's "tls" channel credentials): the server's certificate is
	// checked against CAFile, or the system's roots when CAFile is empty.
	Insecure bool
	// CAFile is the PEM file of the CAs that sign the tier's certificate (TLS only).
	CAFile string
	// CertFile and KeyFile are the PEM files of the client's certificate and key, when the tier
	// asks for mutual TLS (TLS only; both or neither).
	CertFile, KeyFile string
}

// Bootstrap returns the JSON of a grpc-go xDS bootstrap file that points grpc-go at the tier, for
// the GRPC_XDS_BOOTSTRAP file or the GRPC_XDS_BOOTSTRAP_CONFIG variable. A program that imports
// google.golang.org/grpc/xds can then dial "xds:///greeter" (or "xds:///greeter.shop").
func Bootstrap(c BootstrapConfig) ([]byte, error) {
	var errs []error
	if len(c.ServerURIs) == 0 {
		errs = append(errs, errors.New("BootstrapConfig.ServerURIs is empty: name the tier's address, such as \"kuberegistry-xds.infra.svc:18000\""))
	}
	for _, uri := range c.ServerURIs {
		if err := checkServerURI(uri); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Insecure && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") {
		errs = append(errs, errors.New("BootstrapConfig: Insecure with TLS files: drop Insecure to use TLS, or the files to connect in plaintext"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("BootstrapConfig: CertFile and KeyFile go together: give both for mutual TLS, or neither"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(errs...))
	}

	type channelCreds struct {
		Type   string            `json:"type"`
		Config map[string]string `json:"config,omitempty"`
	}
	creds := channelCreds{Type: "insecure"}
	if !c.Insecure {
		creds = channelCreds{Type: "tls", Config: map[string]string{}}
		for key, file := range map[string]string{"ca_certificate_file": c.CAFile, "certificate_file": c.CertFile, "private_key_file": c.KeyFile} {
			if file != "" {
				creds.Config[key] = file
			}
		}
	}
	type xdsServer struct {
		ServerURI      string         `json:"server_uri"`
		ChannelCreds   []channelCreds `json:"channel_creds"`
		ServerFeatures []string       `json:"server_features"`
	}
	type node struct {
		ID string `json:"id"`
	}
	out := struct {
		XDSServers []xdsServer `json:"xds_servers"`
		Node       node        `json:"node"`
	}{Node: node{ID: c.NodeID}}
	if out.Node.ID == "" {
		out.Node.ID = "kuberegistry-xds-client"
	}
	for _, uri := range c.ServerURIs {
		out.XDSServers = append(out.XDSServers, xdsServer{
			ServerURI:      uri,
			ChannelCreds:   []channelCreds{creds},
			ServerFeatures: []string{"xds_v3"},
		})
	}
	return json.MarshalIndent(out, "", "  ")
}

// checkServerURI accepts "host:port" and gRPC targets with a scheme ("dns:///host:port").
func checkServerURI(uri string) error {
	if strings.Contains(uri, "://") {
		return nil
	}
	if _, port, err := net.SplitHostPort(uri); err != nil || port == "" {
		return fmt.Errorf("server URI %q: give host:port, such as \"kuberegistry-xds.infra.svc:18000\"", uri)
	}
	return nil
}
