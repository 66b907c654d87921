package xds

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The JSON for each kind of connection; grpc-go reads the insecure one in the tests that dial
// xds:///greeter (grpc-go parses a bootstrap only when it connects).
func TestBootstrap(t *testing.T) {
	tests := []struct {
		name   string
		config BootstrapConfig
		want   string // the JSON, compacted
	}{
		{"insecure", BootstrapConfig{ServerURIs: []string{"xds.infra.svc:18000"}, NodeID: "web-0", Insecure: true},
			`{"xds_servers":[{"server_uri":"xds.infra.svc:18000","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":"web-0"}}`},
		{"TLS with the system roots, and a fallback server", BootstrapConfig{ServerURIs: []string{"a:18000", "dns:///b:18000"}},
			`{"xds_servers":[{"server_uri":"a:18000","channel_creds":[{"type":"tls"}],"server_features":["xds_v3"]},` +
				`{"server_uri":"dns:///b:18000","channel_creds":[{"type":"tls"}],"server_features":["xds_v3"]}],"node":{"id":"kuberegistry-xds-client"}}`},
		{"mutual TLS", BootstrapConfig{ServerURIs: []string{"a:18000"}, NodeID: "n", CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"},
			`{"xds_servers":[{"server_uri":"a:18000","channel_creds":[{"type":"tls","config":{"ca_certificate_file":"/ca.pem","certificate_file":"/c.pem","private_key_file":"/k.pem"}}],"server_features":["xds_v3"]}],"node":{"id":"n"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Bootstrap(tt.config)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			compact, _ := json.Marshal(v)
			var want any
			_ = json.Unmarshal([]byte(tt.want), &want)
			wantCompact, _ := json.Marshal(want)
			if string(compact) != string(wantCompact) {
				t.Errorf("Bootstrap\n got %s\nwant %s", compact, wantCompact)
			}
		})
	}
}

func TestBootstrapRejectsBadConfigs(t *testing.T) {
	tests := []struct {
		name   string
		config BootstrapConfig
		want   string
	}{
		{"no server", BootstrapConfig{Insecure: true}, "ServerURIs is empty"},
		{"no port", BootstrapConfig{ServerURIs: []string{"xds.infra.svc"}, Insecure: true}, "give host:port"},
		{"insecure with TLS files", BootstrapConfig{ServerURIs: []string{"a:1"}, Insecure: true, CAFile: "/ca.pem"}, "drop Insecure"},
		{"a certificate without its key", BootstrapConfig{ServerURIs: []string{"a:1"}, CertFile: "/c.pem"}, "CertFile and KeyFile go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Bootstrap(tt.config)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Bootstrap: %v, want ErrInvalidOption saying %q", err, tt.want)
			}
		})
	}
}
