package kuberegistry

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzTranslatePod feeds arbitrary annotations to discovery: it must never panic, and must either
// skip the pod with a reason or produce well-formed endpoints.
func FuzzTranslatePod(f *testing.F) {
	f.Add(`{"80":"http"}`, `{"region":"sh"}`, `{"80":"isSecure=true"}`)
	f.Add(`{"99999":"grpc"}`, `null`, ``)
	f.Add(`["grpc"]`, `{"a":1}`, `{"1":"%zz"}`)
	f.Add(`{"1":"a+b-c.d"}`, `{"":""}`, `{}`)
	f.Fuzz(func(t *testing.T, protocols, metadata, params string) {
		spec := registered("cart", protocols)
		spec.annotations[AnnotationsKeyMetadata] = metadata
		if params != "" {
			spec.annotations[AnnotationsKeyEndpointParams] = params
		}
		spec.ips = []string{"10.0.0.1", "fd00::1"}
		got := translatePod(newPod(spec))
		// A registry's own translation, with its table, and again with the pod's earlier
		// version, must make the same of it.
		tr := defaultTranslation.withTable()
		shared := tr.translate(newPod(spec), nil)
		again := tr.translate(newPod(spec), &shared)
		for _, pi := range []podInstance{shared, again} {
			if pi.problem() != got.problem() || (pi.instance == nil) != (got.instance == nil) ||
				(pi.instance != nil && !pi.instance.equal(got.instance)) {
				t.Fatalf("with a table: %+v (%q), alone: %+v (%q)", pi.instance, pi.problem(), got.instance, got.problem())
			}
		}
		if got.problem() != "" {
			if got.instance != nil {
				t.Fatalf("a malformed pod produced an instance: %s", got.problem())
			}
			return
		}
		for _, e := range got.instance.Endpoints {
			u, err := url.Parse(e)
			if err != nil || u.Port() == "" || u.Hostname() == "" {
				t.Fatalf("endpoint %q is not scheme://ip:port: %v", e, err)
			}
		}
	})
}

// FuzzRegisteredEndpoint checks that whatever Register accepts, discovery returns with the same
// scheme, port and query, and that the labels it writes are valid.
func FuzzRegisteredEndpoint(f *testing.F) {
	f.Add("grpc://10.0.0.1:9000", "v1.2.3+build.7")
	f.Add("http://[fd00::1]:8000?isSecure=true", "")
	f.Add("http://:80/", strings.Repeat("x", 70))
	f.Add("GRPC://host:1?a=b&c", "ü")
	f.Fuzz(func(t *testing.T, endpoint, version string) {
		in := &ServiceInstance{ID: version, Name: "cart", Version: version, Endpoints: []string{endpoint}}
		reg, err := encodeRegistration(in)
		if err != nil {
			return
		}
		for k, v := range reg.labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Fatalf("label %s=%q is invalid: %v", k, v, errs)
			}
		}
		spec := podSpec{labels: reg.labels, annotations: map[string]string{}}
		for k, v := range reg.annotations {
			if v != nil {
				spec.annotations[k] = *v
			}
		}
		got := translatePod(newPod(spec))
		if got.problem() != "" {
			t.Fatalf("registered %q, discovery refused it: %s", endpoint, got.problem())
		}
		if got.instance.Version != version {
			t.Fatalf("version %q came back as %q", version, got.instance.Version)
		}
		want, _ := url.Parse(endpoint)
		if len(got.instance.Endpoints) != 1 {
			t.Fatalf("registered %q, discovered %v", endpoint, got.instance.Endpoints)
		}
		u, err := url.Parse(got.instance.Endpoints[0])
		// Discovery may mark a secure endpoint, and adds nothing else.
		query := strings.TrimPrefix(strings.TrimSuffix(u.RawQuery, "isSecure=true"), "&")
		if want.RawQuery != "" {
			query = strings.TrimSuffix(u.RawQuery, "&isSecure=true")
		}
		if err != nil || !strings.EqualFold(u.Scheme, want.Scheme) || u.Port() != want.Port() || query != want.RawQuery {
			t.Fatalf("registered %q, discovered %q", endpoint, got.instance.Endpoints[0])
		}
	})
}

// FuzzServiceName checks that the name rule agrees with Kubernetes' own label validation.
func FuzzServiceName(f *testing.F) {
	for _, s := range []string{"cart", "", "-a", "a-", "a/b", strings.Repeat("a", 63), strings.Repeat("a", 64), "ü", "a.b_c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ours := serviceNameProblem(name) == ""
		theirs := name != "" && len(validation.IsValidLabelValue(name)) == 0
		if ours != theirs {
			t.Fatalf("%q: our rule says valid=%v, Kubernetes says %v", name, ours, theirs)
		}
	})
}

// FuzzRegisterIsServedExactly checks the contract between Register and discovery: for any
// instance, either Register refuses it before any request, or a pod carrying what Register writes
// is discovered with exactly the registered ID, version, metadata, and endpoints (scheme, port,
// query; discovery may only mark an endpoint secure).
func FuzzRegisterIsServedExactly(f *testing.F) {
	f.Add(uint8(1), "grpc", strings.Repeat("q", 17<<10), "zone", "a", uint16(0)) // a 17 KiB query
	f.Add(uint8(64), "grpc", strings.Repeat("q", 300), "zone", "a", uint16(0))   // 64 ports × 300 bytes
	f.Add(uint8(1), strings.Repeat("s", 17<<10), "", "zone", "a", uint16(0))     // a 17 KiB scheme
	f.Add(uint8(3), "http", "a=b", strings.Repeat("k", 300), "v", uint16(120))   // large metadata
	f.Add(uint8(0), "", "", "", "", uint16(0))
	f.Fuzz(func(t *testing.T, ports uint8, scheme, query, key, value string, copies uint16) {
		in := &ServiceInstance{ID: "cart-0", Name: "cart", Version: "v1", Metadata: map[string]string{}}
		for i := range int(copies % 300) {
			in.Metadata[fmt.Sprint(key, i)] = value
		}
		for i := range int(ports % 80) {
			e := fmt.Sprintf("%s://10.0.0.1:%d", scheme, 1000+i)
			if query != "" {
				e += "?" + query
			}
			in.Endpoints = append(in.Endpoints, e)
		}
		reg, err := encodeRegistration(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidInstance) {
				t.Fatalf("Register refused with %v, not ErrInvalidInstance", err)
			}
			return
		}
		spec := podSpec{name: "cart-0", labels: reg.labels, annotations: map[string]string{}}
		for k, v := range reg.annotations {
			if v != nil {
				spec.annotations[k] = *v
			}
		}
		got := translatePod(newPod(spec))
		if got.problem() != "" || got.instance == nil {
			t.Fatalf("Register accepted %d endpoints (scheme %d bytes, query %d bytes) and %d metadata bytes; discovery refused them: %s",
				len(in.Endpoints), len(scheme), len(query), len(*reg.annotations[AnnotationsKeyMetadata]), got.problem())
		}
		d := got.instance
		if d.ID != in.ID || d.Version != in.Version || !maps.Equal(d.Metadata, in.Metadata) {
			t.Fatalf("registered %+v, discovered %+v", in, d)
		}
		want := make(map[string]bool, len(in.Endpoints))
		for _, e := range in.Endpoints {
			want[strings.ToLower(e)] = true
		}
		if len(d.Endpoints) != len(want) {
			t.Fatalf("registered %d endpoints, discovered %d", len(want), len(d.Endpoints))
		}
		for _, e := range d.Endpoints {
			plain := strings.TrimSuffix(strings.TrimSuffix(e, "isSecure=true"), "?")
			plain = strings.TrimSuffix(plain, "&")
			if !want[strings.ToLower(e)] && !want[strings.ToLower(plain)] {
				t.Fatalf("discovered %q, which was not registered", e)
			}
		}
	})
}
