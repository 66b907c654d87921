// Package kuberegistrytest helps unit-test code that registers or discovers services with
// kuberegistry, on client-go's fake clientset (k8s.io/client-go/kubernetes/fake) instead of a
// cluster. Each helper takes the test's testing.TB, fails the test with a message that says what
// went wrong, and undoes what it did with tb.Cleanup.
//
//	client := fake.NewClientset()
//	kuberegistrytest.ReadyPod(t, client, "shop", "cart-0", &kuberegistry.ServiceInstance{
//		Name: "cart", Version: "v1", Endpoints: []string{"grpc://10.0.0.7:9000"},
//	})
//	reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0") // started, closed at cleanup
//	kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0")          // exactly these IDs
//	kuberegistrytest.SetReady(t, client, "shop", "cart-0", false)        // a failing readiness probe
//	kuberegistrytest.WaitForInstances(t, reg, "cart")                    // none
//
// ReadyPod registers its pod through kuberegistry's own Register, so the pod carries exactly the
// labels and annotations a registered pod carries in a cluster. Terminate marks a pod the way the
// API server does during its termination grace period: still running, with a deletion timestamp.
//
// # Informers on the fake clientset
//
// An informer lists, then watches from the list's resource version. Older fake clientsets had no
// resource versions, and anything written between the List and the Watch was lost to the
// informer. The tracker of client-go v0.37 assigns resource versions, and a watch that starts
// from one replays, as Added events, the objects created or changed since: such creates and
// updates are no longer lost. Deletes still are: the tracker keeps no tombstones, so a pod deleted
// in that window stays in the informer's cache, and kuberegistry, which never resyncs, serves it
// until the registry is closed. (Deleting a pod right after Start returned was lost in 5 to 8 runs
// out of 200; TestFakeTrackerForgetsDeletes pins the behaviour down.) The tracker also ignores
// label selectors on watches (an informer selecting on a label gets every pod's events) and
// finalizers (a delete removes the object at once), which is why Terminate sets the deletion
// timestamp by an update.
//
// NewRegistry therefore returns only once the registry's watch is established: a watch reactor on
// the clientset sees the watch request, and the fake serves every later write made through the
// clientset after that watch is registered (the fake runs its reactor chain under the lock that
// writes take too). Code under test that builds its own registry from the clientset has the same
// window to avoid: hand it the registry NewRegistry returns, or delete pods only once its registry
// has shown a change made after Start, which reached it through the watch.
package kuberegistrytest
