package kuberegistry

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"
)

// MaxMetadataSize is the largest metadata annotation, in bytes of JSON, that Register writes and
// discovery reads. Metadata is for small key-value pairs; a pod with a larger annotation is skipped.
const MaxMetadataSize = 32 << 10

// maxProtocolsSize bounds the protocols and endpoint-params annotations (maxPorts entries).
const maxProtocolsSize = 16 << 10

// maxIdentitySize bounds an instance ID or version.
const maxIdentitySize = 1 << 10

// annotationJSON decodes and encodes the annotations exactly as encoding/json would, map keys
// sorted, so that registering the same instance twice writes the same bytes.
var annotationJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// decodeMetadata parses the metadata annotation: a JSON object of strings, or null (what go-kratos
// writes for an instance without metadata).
func decodeMetadata(s string) (map[string]string, error) {
	if len(s) > MaxMetadataSize {
		return nil, fmt.Errorf("annotation %s is %d bytes, more than the %d allowed", AnnotationsKeyMetadata, len(s), MaxMetadataSize)
	}
	var m map[string]string
	if err := annotationJSON.UnmarshalFromString(s, &m); err != nil {
		return nil, fmt.Errorf("annotation %s is not a JSON object of strings: %v", AnnotationsKeyMetadata, err)
	}
	return m, nil
}

// portValue is one entry of an annotation that maps ports to strings.
type portValue struct {
	port  int32
	value string
}

// decodePortMap parses an annotation that maps port numbers to strings, as the protocols and
// endpoint-params annotations do, sorted by port.
func decodePortMap(key, s string) ([]portValue, error) {
	if len(s) > maxProtocolsSize {
		return nil, fmt.Errorf("annotation %s is %d bytes, more than the %d allowed", key, len(s), maxProtocolsSize)
	}
	var m map[string]string
	if err := annotationJSON.UnmarshalFromString(s, &m); err != nil {
		return nil, fmt.Errorf("annotation %s is not a JSON object of port to string: %v", key, err)
	}
	if len(m) > maxPorts {
		return nil, fmt.Errorf("annotation %s lists %d ports, more than the %d allowed", key, len(m), maxPorts)
	}
	entries := make([]portValue, 0, len(m))
	for k, v := range m {
		port, err := parsePort(k)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %v", key, err)
		}
		entries = append(entries, portValue{port: port, value: v})
	}
	slices.SortFunc(entries, func(a, b portValue) int { return int(a.port) - int(b.port) })
	return entries, nil
}

// decodeProtocols parses the protocols annotation, e.g. {"80":"http","9000":"grpc"}.
func decodeProtocols(s string) ([]portProtocol, error) {
	entries, err := decodePortMap(AnnotationsKeyProtocolMap, s)
	if err != nil {
		return nil, err
	}
	ports := make([]portProtocol, len(entries))
	for i, e := range entries {
		if !validScheme(e.value) {
			return nil, fmt.Errorf("annotation %s: port %d: %q is not a URL scheme", AnnotationsKeyProtocolMap, e.port, e.value)
		}
		ports[i] = portProtocol{port: e.port, scheme: strings.ToLower(e.value)}
	}
	return ports, nil
}

// decodeEndpointParams parses the endpoint-params annotation, e.g. {"9000":"isSecure=true"}.
func decodeEndpointParams(s string) ([]portValue, error) {
	entries, err := decodePortMap(AnnotationsKeyEndpointParams, s)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if _, err := url.ParseQuery(e.value); err != nil {
			return nil, fmt.Errorf("annotation %s: port %d: %q is not a URL query: %v", AnnotationsKeyEndpointParams, e.port, e.value, err)
		}
		// ParseQuery lets control characters through, which no URL may hold (found by fuzzing).
		if i := strings.IndexFunc(e.value, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
			return nil, fmt.Errorf("annotation %s: port %d: %q holds a control character, which no URL may", AnnotationsKeyEndpointParams, e.port, e.value)
		}
	}
	return entries, nil
}

// registration is what Register writes on its pod.
type registration struct {
	labels      map[string]string
	annotations map[string]*string // nil removes the annotation
}

// encodeRegistration validates an instance and turns it into the labels and annotations of a pod.
// It makes no request, so that every problem is reported before the cluster is touched.
func encodeRegistration(s *ServiceInstance) (*registration, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: the instance is nil", ErrInvalidInstance)
	}
	if p := serviceNameProblem(s.Name); p != "" {
		return nil, fmt.Errorf("%w: name %q: %s; %s", ErrInvalidInstance, s.Name, p, serviceNameRule)
	}
	if len(s.ID) > maxIdentitySize || len(s.Version) > maxIdentitySize {
		return nil, fmt.Errorf("%w: the ID and version may be at most %d bytes each", ErrInvalidInstance, maxIdentitySize)
	}
	if err := checkUTF8(s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInstance, err)
	}
	ports, err := registeredPorts(s.Endpoints)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInstance, err)
	}
	metadata, err := annotationJSON.MarshalToString(s.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrInvalidInstance, err)
	}
	if len(metadata) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: metadata is %d bytes of JSON, more than the %d an annotation may hold here (MaxMetadataSize); keep large data elsewhere",
			ErrInvalidInstance, len(metadata), MaxMetadataSize)
	}
	protocols := make(map[string]string, len(ports))
	params := make(map[string]string)
	for _, p := range ports {
		protocols[strconv.Itoa(int(p.port))] = p.scheme
		if p.query != "" {
			params[strconv.Itoa(int(p.port))] = p.query
		}
	}
	// Discovery reads these annotations up to maxProtocolsSize: refuse here what it would refuse.
	protocolsJSON, paramsJSON := mustMarshal(protocols), mustMarshal(params)
	if len(*protocolsJSON) > maxProtocolsSize {
		return nil, fmt.Errorf("%w: the endpoints' schemes make %d bytes of JSON in annotation %s, more than the %d discovery reads; register fewer ports or shorter schemes",
			ErrInvalidInstance, len(*protocolsJSON), AnnotationsKeyProtocolMap, maxProtocolsSize)
	}
	if len(*paramsJSON) > maxProtocolsSize {
		return nil, fmt.Errorf("%w: the endpoints' queries make %d bytes of JSON in annotation %s, more than the %d discovery reads; keep large data out of endpoint queries",
			ErrInvalidInstance, len(*paramsJSON), AnnotationsKeyEndpointParams, maxProtocolsSize)
	}
	reg := &registration{
		labels: map[string]string{LabelsKeyServiceName: s.Name},
		annotations: map[string]*string{
			AnnotationsKeyMetadata:       &metadata,
			AnnotationsKeyProtocolMap:    protocolsJSON,
			AnnotationsKeyServiceID:      nil,
			AnnotationsKeyServiceVersion: nil,
			AnnotationsKeyEndpointParams: nil,
		},
	}
	// Values a label cannot hold go to an annotation, and the label keeps a label-safe form.
	var exact bool
	if reg.labels[LabelsKeyServiceID], exact = labelSafe(s.ID); !exact {
		reg.annotations[AnnotationsKeyServiceID] = &s.ID
	}
	if reg.labels[LabelsKeyServiceVersion], exact = labelSafe(s.Version); !exact {
		reg.annotations[AnnotationsKeyServiceVersion] = &s.Version
	}
	if len(params) > 0 {
		reg.annotations[AnnotationsKeyEndpointParams] = paramsJSON
	}
	return reg, nil
}

// mustMarshal encodes a map of strings, which cannot fail.
func mustMarshal(m map[string]string) *string {
	s, _ := annotationJSON.MarshalToString(m)
	return &s
}

// checkUTF8 rejects text that JSON annotations would not store as given: invalid UTF-8 would
// come back with replacement characters.
func checkUTF8(s *ServiceInstance) error {
	texts := []string{s.ID, s.Version}
	texts = append(texts, s.Endpoints...)
	for k, v := range s.Metadata {
		texts = append(texts, k, v)
	}
	for _, t := range texts {
		if !utf8.ValidString(t) {
			return fmt.Errorf("%q is not valid UTF-8, which annotations cannot store as given", t)
		}
	}
	return nil
}
