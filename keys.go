package kuberegistry

// The keys go-kratos uses on pods, so that fleets labelled for go-kratos work unchanged.
const (
	// LabelsKeyServiceID is the pod label holding the instance ID.
	LabelsKeyServiceID = "kratos-service-id"
	// LabelsKeyServiceName is the pod label holding the service name; discovery selects on it.
	LabelsKeyServiceName = "kratos-service-app"
	// LabelsKeyServiceVersion is the pod label holding the service version.
	LabelsKeyServiceVersion = "kratos-service-version"
	// AnnotationsKeyMetadata is the pod annotation holding the metadata as a JSON object of strings.
	AnnotationsKeyMetadata = "kratos-service-metadata"
	// AnnotationsKeyProtocolMap is the pod annotation mapping ports to URL schemes as a JSON object,
	// e.g. {"80":"http","9000":"grpc"}.
	AnnotationsKeyProtocolMap = "kratos-service-protocols"
)

// Keys of this package's own, which go-kratos ignores.
const (
	// AnnotationsKeyServiceID holds the exact instance ID when it is not a valid label value (longer
	// than 63 characters, or with characters a label cannot hold). The label then holds a
	// label-safe form of it, and discovery reads the annotation.
	AnnotationsKeyServiceID = "kuberegistry.io/service-id"
	// AnnotationsKeyServiceVersion holds the exact version when it is not a valid label value, such
	// as "v1.2.3+build.7"; the label then holds a label-safe form of it.
	AnnotationsKeyServiceVersion = "kuberegistry.io/service-version"
	// AnnotationsKeyEndpointParams maps ports to the query string registered with their endpoint,
	// e.g. {"9000":"isSecure=true"}, so that discovered endpoints carry it.
	AnnotationsKeyEndpointParams = "kuberegistry.io/endpoint-params"
)

// MetadataKeyNamespace is the metadata key holding an instance's namespace: added by a Registry
// whose discovery spans several namespaces (WithNamespaces, or all namespaces), and always by an
// EndpointSliceDiscovery.
const MetadataKeyNamespace = "kuberegistry.io/namespace"

// Metadata keys of the instances an EndpointSliceDiscovery returns, besides MetadataKeyNamespace,
// which it always sets to the namespace of the instance's Service.
const (
	// MetadataKeyZone holds the zone of the endpoint (the slice's endpoints[].zone), when set.
	MetadataKeyZone = "kuberegistry.io/zone"
	// MetadataKeyNode holds the node that hosts the endpoint (endpoints[].nodeName), when set.
	MetadataKeyNode = "kuberegistry.io/node"
	// MetadataKeyZoneHints holds the zones the endpoint is meant for in topology-aware routing
	// (endpoints[].hints.forZones), comma-separated, when set.
	MetadataKeyZoneHints = "kuberegistry.io/zone-hints"
	// ServiceLabelSecured is the Service label that marks all its endpoints secure when "true",
	// as in Spring Cloud Kubernetes.
	ServiceLabelSecured = "secured"
)
