package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// protobufPods serves the scenario's pods the way kube-apiserver does to a protobuf client: a
// List answers with the selected pods in one protobuf PodList, and a watch stays open and quiet.
// It lets an in-process benchmark measure what a registry built by NewForConfig holds, with every
// string decoded into memory of its own, which the fake clientset (whose objects share their
// strings with its tracker) does not show.
func protobufPods(tb testing.TB, s workload.Scenario) *rest.Config {
	tb.Helper()
	config, _ := protobufPodsWatched(tb, s)
	return config
}

// protobufPodsWatched is protobufPods with a watch that streams the events sent to the returned
// channel: protobuf frames made by watchFrame.
func protobufPodsWatched(tb testing.TB, s workload.Scenario) (*rest.Config, chan<- []byte) {
	tb.Helper()
	events := make(chan []byte)
	pods := make([]corev1.Pod, s.Pods)
	for i := range pods {
		pods[i] = *s.Pod(namespace, i)
		pods[i].UID = stubUID(i) // as the API server sets them
		pods[i].ResourceVersion = strconv.Itoa(1000 + i)
	}
	encoder := scheme.Codecs.EncoderForVersion(protobuf.NewSerializer(scheme.Scheme, scheme.Scheme), corev1.SchemeGroupVersion)
	encode := func(obj runtime.Object) []byte {
		var b bytes.Buffer
		if err := encoder.Encode(obj, &b); err != nil {
			tb.Fatal(err)
		}
		return b.Bytes()
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		selector, err := labels.Parse(q.Get("labelSelector"))
		if err != nil || req.URL.Path != "/api/v1/namespaces/"+namespace+"/pods" {
			http.Error(w, "unexpected request "+req.URL.String(), http.StatusBadRequest)
			return
		}
		if q.Get("sendInitialEvents") == "true" {
			// Not served: the reflector falls back to a List, then a watch, as kuberegistry does.
			http.Error(w, "sendInitialEvents is not served by this stub", http.StatusBadRequest)
			return
		}
		if q.Get("watch") == "true" {
			w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf;stream=watch")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for {
				select {
				case frame := <-events:
					_, _ = w.Write(frame)
					w.(http.Flusher).Flush()
				case <-req.Context().Done():
					return
				}
			}
		}
		list := &corev1.PodList{}
		list.ResourceVersion = "1"
		for i := range pods {
			if selector.Matches(labels.Set(pods[i].Labels)) {
				list.Items = append(list.Items, pods[i])
			}
		}
		w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf")
		_, _ = w.Write(encode(list))
	}))
	tb.Cleanup(server.Close)
	return &rest.Config{Host: server.URL}, events
}

// watchFrame encodes a MODIFIED event of pod as kube-apiserver frames it on a protobuf watch: a
// big-endian length, then the WatchEvent, whose object is the pod in its protobuf envelope.
func watchFrame(tb testing.TB, pod *corev1.Pod) []byte {
	tb.Helper()
	var object bytes.Buffer
	encoder := scheme.Codecs.EncoderForVersion(protobuf.NewSerializer(scheme.Scheme, scheme.Scheme), corev1.SchemeGroupVersion)
	if err := encoder.Encode(pod, &object); err != nil {
		tb.Fatal(err)
	}
	event := metav1.WatchEvent{Type: string(watch.Modified), Object: runtime.RawExtension{Raw: object.Bytes()}}
	payload, err := event.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

// stubUID is the UID of pod i, in the shape the API server gives.
func stubUID(i int) types.UID {
	return types.UID(fmt.Sprintf("%08x-5aa7-45d6-9d83-27de882cf99a", i))
}
