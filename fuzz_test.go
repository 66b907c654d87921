package kuberegistry

import (
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
			if pi.problem != got.problem || (pi.instance == nil) != (got.instance == nil) ||
				(pi.instance != nil && !pi.instance.equal(got.instance)) {
				t.Fatalf("with a table: %+v (%q), alone: %+v (%q)", pi.instance, pi.problem, got.instance, got.problem)
			}
		}
		if got.problem != "" {
			if got.instance != nil {
				t.Fatalf("a malformed pod produced an instance: %s", got.problem)
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
		if got.problem != "" {
			t.Fatalf("registered %q, discovery refused it: %s", endpoint, got.problem)
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
