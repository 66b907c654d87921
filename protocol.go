package kuberegistry

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxPorts bounds the ports one instance may register, so that one pod cannot fill the cache.
const maxPorts = 64

// portProtocol is one registered port: the URL scheme its endpoints use and the query string
// registered with it (without '?').
type portProtocol struct {
	port   int32
	scheme string
	query  string
}

// knownProtocols are the port names that imply a scheme when a pod has no protocols annotation:
// a container port named "grpc" or "grpc-internal" serves grpc. Longest first, so that
// "grpc-web" wins over "grpc".
var knownProtocols = []string{"grpc-web", "http2", "grpcs", "https", "grpc", "http", "h2c", "tcp", "tls", "udp", "wss", "ws"}

// protocolFromPortName returns the scheme a container port's name stands for, if any.
func protocolFromPortName(name string) (string, bool) {
	name = strings.ToLower(name)
	for _, p := range knownProtocols {
		if name == p || strings.HasPrefix(name, p+"-") {
			return p, true
		}
	}
	return "", false
}

// isSecureScheme reports whether a scheme is encrypted.
func isSecureScheme(scheme string) bool {
	switch scheme {
	case "https", "grpcs", "wss", "tls":
		return true
	}
	return false
}

// isSecurePortName reports whether a container port's name says it is encrypted: "https",
// "grpcs" or "tls", alone or followed by '-'.
func isSecurePortName(name string) bool {
	name = strings.ToLower(name)
	for _, p := range []string{"https", "grpcs", "tls"} {
		if name == p || strings.HasPrefix(name, p+"-") {
			return true
		}
	}
	return false
}

// parseRegisteredEndpoint checks an endpoint given to Register: it must be scheme://host:port with
// an optional query, because discovery rebuilds it from the pod's IPs, the port and the scheme.
func parseRegisteredEndpoint(raw string) (portProtocol, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return portProtocol{}, fmt.Errorf("endpoint %q: %v; want scheme://host:port, e.g. grpc://10.0.0.1:9000", raw, err)
	}
	switch {
	case u.Scheme == "" || u.Opaque != "":
		return portProtocol{}, fmt.Errorf("endpoint %q: want scheme://host:port, e.g. grpc://10.0.0.1:9000", raw)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "":
		return portProtocol{}, fmt.Errorf("endpoint %q: only scheme://host:port and a query can be registered, not a user, path or fragment", raw)
	}
	port, err := parsePort(u.Port())
	if err != nil {
		return portProtocol{}, fmt.Errorf("endpoint %q: %v", raw, err)
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return portProtocol{}, fmt.Errorf("endpoint %q: query: %v", raw, err)
	}
	return portProtocol{port: port, scheme: strings.ToLower(u.Scheme), query: u.RawQuery}, nil
}

// registeredPorts turns the endpoints given to Register into one portProtocol per port, sorted by
// port. The same port listed twice must carry the same scheme and query (an instance listening on
// several addresses lists each), because a pod annotation holds one scheme per port.
func registeredPorts(endpoints []string) ([]portProtocol, error) {
	ports := make([]portProtocol, 0, len(endpoints))
	for _, e := range endpoints {
		p, err := parseRegisteredEndpoint(e)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(ports, func(q portProtocol) bool { return q.port == p.port })
		if i < 0 {
			ports = append(ports, p)
			continue
		}
		if ports[i] != p {
			return nil, fmt.Errorf("endpoint %q: port %d is registered twice with different schemes or queries; a pod can serve one protocol per port", e, p.port)
		}
	}
	if len(ports) > maxPorts {
		return nil, fmt.Errorf("%d ports registered: at most %d are allowed", len(ports), maxPorts)
	}
	slices.SortFunc(ports, func(a, b portProtocol) int { return int(a.port) - int(b.port) })
	return ports, nil
}

// parsePort parses a decimal TCP/UDP port number.
func parsePort(s string) (int32, error) {
	if s == "" {
		return 0, fmt.Errorf("no port")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || s[0] == '0' {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return int32(n), nil
}

// validScheme reports whether s is a URL scheme as RFC 3986 defines it.
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// endpointURL builds "scheme://ip:port[?query]", bracketing IPv6 addresses.
func endpointURL(scheme, ip string, port int32, query string) string {
	e := scheme + "://" + net.JoinHostPort(ip, strconv.Itoa(int(port)))
	if query != "" {
		e += "?" + query
	}
	return e
}
