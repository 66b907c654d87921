package kuberegistry

import (
	"hash/maphash"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// entryMeta makes what a source caches of an object (podEntry, sliceEntry, serviceEntry) a
// runtime.Object with metadata for the informer's store and queue, which key it by namespace and
// name (for a SharedIndexInformer; the pod source keeps its own, see podInformer). It holds only what the sources read: an embedded metav1.ObjectMeta would cost about 250
// bytes of zero fields per cached pod, more than the instance made of it. The UID is kept as a
// hash (see uidHash), which is all a source needs of it: whether a pod was replaced.
type entryMeta struct {
	Namespace string
	Name      string
	uid       uint64
}

// uidHash is what an entry keeps of an object's UID: 8 bytes instead of a 36-byte string.
// Entries compare UIDs only to tell a pod from its replacement of the same name; two UIDs with
// the same 64-bit hash (a chance of 2⁻⁶⁴ per replacement) would let the replacement keep its
// predecessor's instance only if that instance is equal to its own anyway (see instanceOf).
func uidHash(uid types.UID) uint64 {
	if uid == "" {
		return 0
	}
	return maphash.String(uidSeed, string(uid))
}

var uidSeed = maphash.MakeSeed()

var _ metav1.Object = (*entryMeta)(nil)

func (*entryMeta) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (m *entryMeta) GetNamespace() string          { return m.Namespace }
func (m *entryMeta) SetNamespace(namespace string) { m.Namespace = namespace }
func (m *entryMeta) GetName() string               { return m.Name }
func (m *entryMeta) SetName(name string)           { m.Name = name }
func (m *entryMeta) SetUID(uid types.UID)          { m.uid = uidHash(uid) }

// The rest of metav1.Object: fields an entry does not keep read as zero, and setting them does
// nothing, as metav1.Object allows for fields an object does not support.

// GetUID returns "": an entry keeps only the UID's hash.
func (*entryMeta) GetUID() types.UID { return "" }

// GetResourceVersion returns "": no source reads an entry's version (see podInformer.onSelf).
func (*entryMeta) GetResourceVersion() string { return "" }
func (*entryMeta) SetResourceVersion(string)  {}

func (*entryMeta) GetGenerateName() string                       { return "" }
func (*entryMeta) SetGenerateName(string)                        {}
func (*entryMeta) GetGeneration() int64                          { return 0 }
func (*entryMeta) SetGeneration(int64)                           {}
func (*entryMeta) GetSelfLink() string                           { return "" }
func (*entryMeta) SetSelfLink(string)                            {}
func (*entryMeta) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (*entryMeta) SetCreationTimestamp(metav1.Time)              {}
func (*entryMeta) GetDeletionTimestamp() *metav1.Time            { return nil }
func (*entryMeta) SetDeletionTimestamp(*metav1.Time)             {}
func (*entryMeta) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (*entryMeta) SetDeletionGracePeriodSeconds(*int64)          {}
func (*entryMeta) GetLabels() map[string]string                  { return nil }
func (*entryMeta) SetLabels(map[string]string)                   {}
func (*entryMeta) GetAnnotations() map[string]string             { return nil }
func (*entryMeta) SetAnnotations(map[string]string)              {}
func (*entryMeta) GetFinalizers() []string                       { return nil }
func (*entryMeta) SetFinalizers([]string)                        {}
func (*entryMeta) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (*entryMeta) SetOwnerReferences([]metav1.OwnerReference)    {}
func (*entryMeta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (*entryMeta) SetManagedFields([]metav1.ManagedFieldsEntry)  {}

// interner keeps one copy of the strings that repeat across pods (namespaces, service names,
// versions), which are decoded anew from every pod and would otherwise be held once per pod. It
// belongs to one informer, whose goroutine alone uses it, and forgets everything when it holds
// maxInterned strings, so that it stays small whatever the cluster holds. A nil interner keeps
// nothing.
type interner struct {
	strings map[string]string
}

const maxInterned = 4096

func (in *interner) intern(s string) string {
	if in == nil || s == "" {
		return s
	}
	if kept, ok := in.strings[s]; ok {
		return kept
	}
	if in.strings == nil || len(in.strings) >= maxInterned {
		in.strings = make(map[string]string)
	}
	in.strings[s] = s
	return s
}
