package kuberegistry

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	discoveryv1 "k8s.io/api/discovery/v1"

	"k8s.io/apimachinery/pkg/runtime"
)

// sliceEntry is what the informer caches of an EndpointSlice: its key, its resource version and
// what discovery makes of it. Entries are never changed once made.
type sliceEntry struct {
	entryMeta
	sliceInstances
}

// DeepCopyObject returns a shallow copy: what it points to is immutable.
func (e *sliceEntry) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

// sliceTranslation is how slices become endpoints: the settings of the options that apply.
type sliceTranslation struct {
	securePorts  []int32 // ports whose endpoints are secure
	portsPrefix  *string // WithPortsMetadata's prefix; nil: no ports in metadata
	labelsPrefix *string // WithServiceLabelsMetadata's prefix; nil: no labels in metadata
	primaryPort  string  // WithPrimaryPort's port name; "": none
}

// defaultSliceTranslation is the translation with every option at its default.
var defaultSliceTranslation = sliceTranslation{securePorts: defaultSecurePorts}

// toEntry is the informer's transform: each slice is translated once, as it arrives. It is
// idempotent, as transforms must be.
func (t sliceTranslation) toEntry(obj any) (any, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return obj, nil // already an entry, or a tombstone of one
	}
	return &sliceEntry{
		entryMeta: entryMeta{
			Namespace: s.Namespace,
			Name:      s.Name,
		},
		sliceInstances: t.translate(s),
	}, nil
}

// endpointCondition is how an endpoint may be served, from worst to best.
type endpointCondition uint8

const (
	endpointUnusable           endpointCondition = iota // not ready, and not serving while terminating
	endpointServingTerminating                          // a fallback for a Service with no ready endpoint
	endpointReady                                       // served
)

// conditionOf reads an endpoint's conditions, with the API's defaults: ready and serving are true
// when not set, terminating is false.
func conditionOf(c discoveryv1.EndpointConditions) endpointCondition {
	ready := c.Ready == nil || *c.Ready
	serving := c.Serving == nil || *c.Serving
	terminating := c.Terminating != nil && *c.Terminating
	switch {
	case ready:
		return endpointReady
	case serving && terminating:
		return endpointServingTerminating
	default:
		return endpointUnusable
	}
}

// sliceEndpoint is one usable endpoint of a slice.
type sliceEndpoint struct {
	// backend identifies what the endpoint stands for, across slices and address families:
	// "pod:<namespace>/<name>" for a pod, else "address:<address>".
	backend   string
	address   string // the first address, canonical
	condition endpointCondition
	// instance is this endpoint alone as an instance; shared and read-only.
	instance *ServiceInstance
}

// sliceInstances is what discovery makes of one EndpointSlice. It is computed from the slice
// alone, touching no cluster and no globals.
type sliceInstances struct {
	service   string          // the kubernetes.io/service-name label; "" for a slice of no Service
	endpoints []sliceEndpoint // the endpoints that have an address and at least one URL
	problem   string          // what was skipped and why, for the log; "" when nothing was
}

// translate turns a slice into its usable endpoints. Malformed data costs only the endpoints it
// concerns: it comes back as a problem, never as a panic.
func (t sliceTranslation) translate(s *discoveryv1.EndpointSlice) (si sliceInstances) {
	defer func() {
		// Defence in depth: a bug here must cost one slice, not the process.
		if v := recover(); v != nil {
			si = sliceInstances{service: si.service, problem: fmt.Sprintf("internal error reading the slice: %v", v)}
		}
	}()
	si.service = s.Labels[discoveryv1.LabelServiceName]
	if si.service == "" {
		return si
	}
	var inFamily func(netip.Addr) bool
	switch s.AddressType {
	case discoveryv1.AddressTypeIPv4:
		inFamily = netip.Addr.Is4
	case discoveryv1.AddressTypeIPv6:
		inFamily = netip.Addr.Is6
	default:
		si.problem = fmt.Sprintf("addressType %q is not supported: only IPv4 and IPv6 slices are served", s.AddressType)
		return si
	}
	ports := t.ports(s)
	if len(ports) == 0 {
		if len(s.Endpoints) > 0 {
			si.problem = "no port gives an endpoint: none has a number and an appProtocol or a name that gives " +
				`a URL scheme (such as appProtocol "http" or name "grpc"), and the slice has not exactly one numbered port: its endpoints are not served`
		}
		return si
	}
	shared := t.sharedMetadata(s)
	var problems []string
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		if len(ep.Addresses) == 0 {
			problems = append(problems, fmt.Sprintf("endpoints[%d] has no address", i))
			continue
		}
		a, err := netip.ParseAddr(ep.Addresses[0])
		if err != nil || a.Zone() != "" || !inFamily(a) {
			problems = append(problems, fmt.Sprintf("endpoints[%d] has address %q, which is not an %s address", i, ep.Addresses[0], s.AddressType))
			continue
		}
		address := a.String()
		se := sliceEndpoint{backend: "address:" + address, address: address, condition: conditionOf(ep.Conditions)}
		id := address
		if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" && ref.Name != "" {
			id = ref.Name
			se.backend = "pod:" + cmp.Or(ref.Namespace, s.Namespace) + "/" + ref.Name
		}
		// Ours first, then the shared keys where they do not collide (see sharedMetadata).
		meta := make(map[string]string, len(shared)+4)
		meta[MetadataKeyNamespace] = s.Namespace
		if ep.Zone != nil && *ep.Zone != "" {
			meta[MetadataKeyZone] = *ep.Zone
		}
		if ep.NodeName != nil && *ep.NodeName != "" {
			meta[MetadataKeyNode] = *ep.NodeName
		}
		if ep.Hints != nil && len(ep.Hints.ForZones) > 0 {
			zones := make([]string, len(ep.Hints.ForZones))
			for i, z := range ep.Hints.ForZones {
				zones[i] = z.Name
			}
			meta[MetadataKeyZoneHints] = strings.Join(zones, ",")
		}
		for k, v := range shared {
			if _, taken := meta[k]; !taken {
				meta[k] = v
			}
		}
		urls := make([]string, 0, len(ports))
		for _, p := range ports {
			urls = append(urls, endpointURL(p.scheme, address, p.port, p.query))
		}
		slices.Sort(urls)
		se.instance = &ServiceInstance{ID: id, Name: si.service, Metadata: meta, Endpoints: urls}
		si.endpoints = append(si.endpoints, se)
	}
	if len(problems) > 0 {
		si.problem = problems[0]
		if len(problems) > 1 {
			si.problem += fmt.Sprintf(" (and %d more endpoints skipped)", len(problems)-1)
		}
	}
	return si
}

// sliceLabelsOfItsOwn are the labels the EndpointSlice controller sets on a slice besides the
// Service's own, which WithServiceLabelsMetadata leaves out.
var sliceLabelsOfItsOwn = []string{discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy, discoveryv1.LabelSkipMirror, "service.kubernetes.io/headless"}

// sharedMetadata is the metadata every endpoint of a slice shares, by precedence: the Service's
// named ports (WithPortsMetadata), then its labels (WithServiceLabelsMetadata) where no port took
// the key. The keys of this package (MetadataKeyNamespace, …) come before both.
func (t sliceTranslation) sharedMetadata(s *discoveryv1.EndpointSlice) map[string]string {
	if t.portsPrefix == nil && t.labelsPrefix == nil {
		return nil
	}
	meta := make(map[string]string)
	if t.portsPrefix != nil {
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name != "" && p.Port != nil {
				meta[*t.portsPrefix+*p.Name] = strconv.Itoa(int(*p.Port))
			}
		}
	}
	if t.labelsPrefix != nil {
		for k, v := range s.Labels {
			if _, taken := meta[*t.labelsPrefix+k]; !taken && !slices.Contains(sliceLabelsOfItsOwn, k) {
				meta[*t.labelsPrefix+k] = v
			}
		}
	}
	return meta
}

// ports returns the ports of a slice whose endpoints an instance has, each with its scheme, once:
// the primary port when the slice has it (WithPrimaryPort); else every port whose appProtocol or
// name gives a scheme; else the slice's only port, as "tcp". An endpoint of a secure scheme or
// port, or of a Service labelled secured=true, is marked secure.
func (t sliceTranslation) ports(s *discoveryv1.EndpointSlice) []portProtocol {
	securedService := strings.EqualFold(s.Labels[ServiceLabelSecured], "true")
	mark := func(pp portProtocol) portProtocol {
		if securedService || isSecureScheme(pp.scheme) || slices.Contains(t.securePorts, pp.port) {
			pp.query = "isSecure=true"
		}
		return pp
	}
	numbered := func(p discoveryv1.EndpointPort) bool { return p.Port != nil && *p.Port >= 1 && *p.Port <= 65535 }
	if t.primaryPort != "" {
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name == t.primaryPort && numbered(p) {
				scheme, ok := portScheme(p)
				if !ok {
					scheme = "tcp"
				}
				return []portProtocol{mark(portProtocol{port: *p.Port, scheme: scheme})}
			}
		}
	}
	out := slicePorts(s.Ports, t.securePorts)
	if len(out) == 0 && len(s.Ports) == 1 && numbered(s.Ports[0]) {
		out = []portProtocol{{port: *s.Ports[0].Port, scheme: "tcp"}}
	}
	for i := range out {
		out[i] = mark(out[i])
	}
	return out
}

// slicePorts returns the ports of a slice that give an endpoint, each with its scheme, once. An
// endpoint of a secure scheme or of one of securePorts is marked secure.
func slicePorts(ports []discoveryv1.EndpointPort, securePorts []int32) []portProtocol {
	out := make([]portProtocol, 0, len(ports))
	for _, p := range ports {
		if p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
			continue
		}
		scheme, ok := portScheme(p)
		if !ok {
			continue
		}
		pp := portProtocol{port: *p.Port, scheme: scheme}
		if isSecureScheme(scheme) || slices.Contains(securePorts, *p.Port) {
			pp.query = "isSecure=true"
		}
		if !slices.Contains(out, pp) {
			out = append(out, pp)
		}
	}
	return out
}

// portScheme returns the URL scheme of a slice's port: from its appProtocol, else from its name
// as for a container port. A port with neither has none: its protocol is unknown.
func portScheme(p discoveryv1.EndpointPort) (string, bool) {
	if p.AppProtocol != nil {
		if scheme, ok := schemeFromAppProtocol(*p.AppProtocol); ok {
			return scheme, true
		}
	}
	if p.Name != nil {
		return protocolFromPortName(*p.Name)
	}
	return "", false
}

// schemeFromAppProtocol turns an appProtocol into a URL scheme: an IANA name stands for itself
// ("http", "grpc"), a prefixed name for its part after the last "/" ("kubernetes.io/h2c" is
// "h2c", "kubernetes.io/wss" is "wss", "example.com/thrift" is "thrift").
func schemeFromAppProtocol(appProtocol string) (string, bool) {
	s := strings.ToLower(strings.TrimSpace(appProtocol))
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	if !validScheme(s) {
		return "", false
	}
	return s, true
}

// aggregateSlices builds the instances of one Service from the entries of all its slices, sorted
// by sortInstances. It serves the ready endpoints or, when there is none, those serving while
// terminating (every endpoint with includeNotReady); each address once, and each backend (a pod,
// else an address) as one instance. It reorders entries, and never changes the instances the
// entries hold.
func aggregateSlices(entries []*sliceEntry, includeNotReady bool) []*ServiceInstance {
	// The indexer's order is arbitrary: a fixed order makes the choice between copies stable.
	slices.SortFunc(entries, func(a, b *sliceEntry) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	want := endpointServingTerminating
	n := 0
	for _, e := range entries {
		for i := range e.endpoints {
			if e.endpoints[i].condition == endpointReady {
				want = endpointReady
			}
		}
		n += len(e.endpoints)
	}
	if n == 0 {
		return nil
	}
	owner := make(map[string]string, n) // address → the backend that serves it
	index := make(map[string]int, n)    // backend → its instance in out
	out := make([]*ServiceInstance, 0, n)
	merged := make(map[int]bool) // instances of out that are this call's own, not an entry's
	for _, e := range entries {
		for i := range e.endpoints {
			ep := &e.endpoints[i]
			if ep.condition != want && !includeNotReady {
				continue
			}
			if b, ok := owner[ep.address]; ok && b != ep.backend {
				continue // an address reused by another backend: served once
			}
			owner[ep.address] = ep.backend
			j, ok := index[ep.backend]
			if !ok {
				index[ep.backend] = len(out)
				out = append(out, ep.instance)
				continue
			}
			if !merged[j] {
				c := *out[j] // metadata is shared, read-only; endpoints are copied below
				out[j], merged[j] = &c, true
			}
			out[j].Endpoints = mergeURLs(out[j].Endpoints, ep.instance.Endpoints)
		}
	}
	sortInstances(out)
	return slices.Clip(out)
}

// mergeURLs returns the sorted union of two sorted lists, in a new slice.
func mergeURLs(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// serviceEntry is what the Service informers cache of a Service: its key and its annotations.
type serviceEntry struct {
	entryMeta
	annotations map[string]string
}

// DeepCopyObject returns a shallow copy: the annotations it points to are never changed.
func (e *serviceEntry) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

// lastApplied is kubectl's copy of the whole object: large, and no metadata of an instance.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// toServiceEntry is the Service informers' transform; idempotent, as transforms must be.
func toServiceEntry(obj any) (any, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil // already an entry, or a tombstone of one
	}
	annotations := make(map[string]string, len(svc.Annotations))
	for k, v := range svc.Annotations {
		if k != lastApplied {
			annotations[k] = v
		}
	}
	return &serviceEntry{
		entryMeta:   entryMeta{Namespace: svc.Namespace, Name: svc.Name},
		annotations: annotations,
	}, nil
}

// withServiceAnnotations returns a Service's instances with its annotations in their metadata,
// under prefix and below every key already there, and, when the Service is annotated
// secured=true, every endpoint marked secure; sorted again. The instances given are not changed.
func withServiceAnnotations(instances []*ServiceInstance, annotations map[string]string, prefix string) []*ServiceInstance {
	if len(annotations) == 0 {
		return instances
	}
	secured := strings.EqualFold(annotations[ServiceLabelSecured], "true")
	out := make([]*ServiceInstance, len(instances))
	for i, in := range instances {
		c := *in
		c.Metadata = make(map[string]string, len(in.Metadata)+len(annotations))
		maps.Copy(c.Metadata, in.Metadata)
		for k, v := range annotations {
			if _, taken := c.Metadata[prefix+k]; !taken {
				c.Metadata[prefix+k] = v
			}
		}
		if secured {
			c.Endpoints = make([]string, len(in.Endpoints))
			for j, e := range in.Endpoints {
				c.Endpoints[j] = markedSecure(e)
			}
			slices.Sort(c.Endpoints) // an instance's endpoints stay sorted, as everywhere else
		}
		out[i] = &c
	}
	sortInstances(out)
	return out
}

// markedSecure adds isSecure=true to an endpoint URL's query unless it says isSecure already.
func markedSecure(endpoint string) string {
	query := ""
	if i := strings.IndexByte(endpoint, '?'); i >= 0 {
		query = endpoint[i+1:]
	}
	if strings.Contains("&"+query, "&isSecure=") {
		return endpoint
	}
	switch {
	case strings.HasSuffix(endpoint, "?"):
		return endpoint + "isSecure=true"
	case query == "":
		return endpoint + "?isSecure=true"
	}
	return endpoint + "&isSecure=true"
}
