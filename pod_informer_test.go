package kuberegistry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// handlerLog records what a podInformer hands its handler, one line per call.
type handlerLog struct{ calls []string }

func (l *handlerLog) OnAdd(obj any, initial bool) {
	l.calls = append(l.calls, fmt.Sprintf("add %s initial=%v", describeEntry(obj), initial))
}

func (l *handlerLog) OnUpdate(old, obj any) {
	l.calls = append(l.calls, fmt.Sprintf("update %s -> %s", describeEntry(old), describeEntry(obj)))
}

func (l *handlerLog) OnDelete(obj any) {
	l.calls = append(l.calls, "delete "+describeEntry(obj))
}

func (l *handlerLog) take() []string {
	calls := l.calls
	l.calls = nil
	return calls
}

// describeEntry names a pod entry and its state: "shop/a:ready".
func describeEntry(obj any) string {
	e := obj.(*podEntry)
	return fmt.Sprintf("%s/%s:%s", e.Namespace, e.Name, podStateNames[e.state])
}

// informerPod is a registered pod of service cart, named name, with uid and resource version rv.
func informerPod(name, uid, rv string, ready bool) *corev1.Pod {
	spec := podSpec{name: name, service: "cart", ips: []string{"10.0.0.1"}, notReady: !ready}
	pod := newPod(spec)
	pod.Namespace, pod.UID, pod.ResourceVersion = "shop", types.UID(uid), rv
	return pod
}

func newTestPodInformer(t *testing.T) (*podInformer, *handlerLog) {
	t.Helper()
	tr := defaultTranslation.withTable()
	i := newPodInformerFor(nil, &corev1.Pod{}, tr.toPodEntry, newInformerHealth("shop", "pods"))
	log := &handlerLog{}
	_, err := i.AddEventHandler(log)
	require.NoError(t, err)
	_, err = i.AddEventHandler(log)
	require.Error(t, err, "a second handler")
	return i, log
}

// The informer hands every change to its handler as a SharedIndexInformer would, with the entry
// it holds as the old object, and a relist turns into adds, updates and deletes.
func TestPodInformerHandsEveryChangeToItsHandler(t *testing.T) {
	i, log := newTestPodInformer(t)
	assert.False(t, i.HasSynced())

	require.NoError(t, i.Replace([]any{informerPod("b", "ub", "1", true), informerPod("a", "ua", "2", false)}, "2"))
	assert.Equal(t, []string{"add shop/a:not-ready initial=true", "add shop/b:ready initial=true"}, log.take())
	assert.True(t, i.HasSynced())
	select {
	case <-i.HasSyncedChecker().Done():
	default:
		t.Fatal("synced, but the checker's channel is open")
	}

	require.NoError(t, i.Update(informerPod("a", "ua", "3", true)))
	require.NoError(t, i.Add(informerPod("c", "uc", "4", true)))
	require.NoError(t, i.Delete(informerPod("b", "ub", "5", false))) // the final state differs from what is held
	require.NoError(t, i.Delete(informerPod("nobody", "un", "6", true)))
	assert.Equal(t, []string{
		"update shop/a:not-ready -> shop/a:ready",
		"add shop/c:ready initial=false",
		"delete shop/b:ready", // as held, so that counters keyed on it balance
	}, log.take())

	// A relist after the watch could not resume: c is gone, a changed, d is new.
	require.NoError(t, i.Replace([]any{informerPod("d", "ud", "7", true), informerPod("a", "ua", "8", false)}, "8"))
	assert.Equal(t, []string{
		"update shop/a:ready -> shop/a:not-ready",
		"delete shop/c:ready",
		"add shop/d:ready initial=false",
	}, log.take())
	var held []string
	for e := range i.pods.each() {
		held = append(held, e.Name)
	}
	assert.Equal(t, []string{"a", "d"}, held)
	assert.Nil(t, i.cached("shop", "c"))
	assert.Equal(t, "d", i.cached("shop", "d").Name)
}

// A pod replaced by another of the same name keeps no part of its predecessor's instance, and
// an unchanged registration keeps its instance across updates.
func TestPodInformerReusesInstancesOfTheSamePodOnly(t *testing.T) {
	i, _ := newTestPodInformer(t)
	require.NoError(t, i.Replace([]any{informerPod("a", "u1", "1", true)}, "1"))
	first := i.cached("shop", "a").instance
	require.NoError(t, i.Update(informerPod("a", "u1", "2", false)))
	assert.Same(t, first, i.cached("shop", "a").instance, "a readiness flip keeps the instance")
	require.NoError(t, i.Update(informerPod("a", "u2", "3", true)))
	assert.NotSame(t, first, i.cached("shop", "a").instance, "a new pod of the same name")
	assert.Equal(t, first, i.cached("shop", "a").instance, "with the same content")
}

// The registry's own pod is reported with its resource version once its change is handled.
func TestPodInformerReportsTheRegistrysOwnPod(t *testing.T) {
	i, log := newTestPodInformer(t)
	var seen []string
	i.self = podIdentity{namespace: "shop", name: "self"}
	i.onSelf = func(rv string, deleted bool) {
		seen = append(seen, fmt.Sprintf("%s deleted=%v after %d calls", rv, deleted, len(log.calls)))
	}
	require.NoError(t, i.Replace([]any{informerPod("self", "us", "1", true), informerPod("a", "ua", "2", true)}, "2"))
	require.NoError(t, i.Update(informerPod("a", "ua", "3", false)))
	require.NoError(t, i.Update(informerPod("self", "us", "4", false)))
	require.NoError(t, i.Delete(informerPod("self", "us", "5", false)))
	require.NoError(t, i.Replace([]any{informerPod("self", "us2", "6", true)}, "6"))
	require.NoError(t, i.Replace(nil, "7"))
	assert.Equal(t, []string{
		"1 deleted=false after 2 calls", "4 deleted=false after 4 calls", "5 deleted=true after 5 calls",
		"6 deleted=false after 7 calls", " deleted=true after 8 calls",
	}, seen)
}

// Pop only waits for Close, and a closed informer stops the controller's loop.
func TestPodInformerPopWaitsForClose(t *testing.T) {
	i, _ := newTestPodInformer(t)
	done := make(chan error, 1)
	go func() {
		_, err := i.Pop(nil)
		done <- err
	}()
	i.Close()
	i.Close()
	require.ErrorIs(t, <-done, cache.ErrFIFOClosed)
	require.NoError(t, i.Resync())
}

// findKey finds every member of a set of many chunks, and nothing else.
func TestChunkedSetFindKey(t *testing.T) {
	set := chunkedSet{cmp: comparePodKeys, max: 4}
	assert.Nil(t, set.findKey("shop", "a"))
	for n := range 40 {
		e := &podEntry{}
		e.Namespace, e.Name = []string{"east", "west"}[n%2], fmt.Sprintf("p%02d", n)
		set.insert(e)
	}
	require.Greater(t, len(set.chunks), 5)
	for n := range 40 {
		ns, name := []string{"east", "west"}[n%2], fmt.Sprintf("p%02d", n)
		if e := set.findKey(ns, name); assert.NotNil(t, e, name) {
			assert.Equal(t, ns+"/"+name, e.Namespace+"/"+e.Name)
		}
		assert.Nil(t, set.findKey([]string{"west", "east"}[n%2], name))
	}
	assert.Nil(t, set.findKey("", ""))
	assert.Nil(t, set.findKey("zone", "p00"))
	assert.True(t, strings.HasPrefix(set.findKey("east", "p00").Name, "p00"))
}
