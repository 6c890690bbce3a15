package cni

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/config"
)

// Pod and namespace annotations the plugin honours (spec §7.2).
const (
	AnnotationIPv4Pools     = "cni.projectcalico.org/ipv4pools"
	AnnotationIPv6Pools     = "cni.projectcalico.org/ipv6pools"
	AnnotationIPAddrs       = "cni.projectcalico.org/ipAddrs"
	AnnotationIPAddrsNoIPAM = "cni.projectcalico.org/ipAddrsNoIpam"
	AnnotationFloatingIPs   = kubernetes.AnnotationFloatingIPs
	AnnotationHWAddr        = "cni.projectcalico.org/hwAddr"
)

// PodInfo is the pod being wired and its namespace.
type PodInfo struct {
	Pod       *corev1.Pod
	Namespace *corev1.Namespace // nil when it could not be read
}

// PodSource reads pods and namespaces (the Kubernetes API; a fake in tests).
type PodSource interface {
	PodInfo(ctx context.Context, namespace, name string) (*PodInfo, error)
}

// ClientsetPods is a PodSource on a Kubernetes clientset.
type ClientsetPods struct{ Client k8s.Interface }

// PodInfo reads the pod (required) and its namespace (best effort: only its
// pool annotations are used).
func (c ClientsetPods) PodInfo(ctx context.Context, namespace, name string) (*PodInfo, error) {
	pod, err := c.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	info := &PodInfo{Pod: pod}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	switch {
	case err == nil:
		info.Namespace = ns
	case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
	default:
		return nil, fmt.Errorf("namespace %s: %w", namespace, err)
	}
	return info, nil
}

// podSourceFor returns the Kubernetes API of the datastore, or one built from
// kubernetes.kubeconfig in etcd mode; nil when no API server is configured.
func podSourceFor(ctx context.Context, ds datastore.Interface, spec config.Spec, env func(string) (string, bool)) (PodSource, error) {
	if b, ok := ds.(*kubernetes.Backend); ok && b.Clientset() != nil {
		return ClientsetPods{Client: b.Clientset()}, nil
	}
	if spec.Kubeconfig == "" && spec.K8sAPIEndpoint == "" {
		if h, _ := env("KUBERNETES_SERVICE_HOST"); h == "" {
			return nil, nil
		}
	}
	b, err := kubernetes.New(ctx, kubernetes.Config{
		Kubeconfig: spec.Kubeconfig, APIEndpoint: spec.K8sAPIEndpoint,
		InCluster:    spec.Kubeconfig == "" && spec.K8sAPIEndpoint == "",
		SkipCRDCheck: true,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to the Kubernetes API for pod annotations: %w", err)
	}
	return ClientsetPods{Client: b.Clientset()}, nil
}

// jsonList decodes a JSON list annotation; ok is false when it is absent.
func jsonList(ann map[string]string, key string) (vals []string, ok bool, err error) {
	raw, ok := ann[key]
	if !ok || raw == "" {
		return nil, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &vals); err != nil {
		return nil, true, fmt.Errorf("annotation %s=%q is not a JSON list of strings: %w", key, raw, err)
	}
	return vals, true, nil
}

// annotations returns the pod's annotations (nil-safe).
func (pi *PodInfo) annotations() map[string]string {
	if pi == nil || pi.Pod == nil {
		return nil
	}
	return pi.Pod.Annotations
}

func (pi *PodInfo) nsAnnotations() map[string]string {
	if pi == nil || pi.Namespace == nil {
		return nil
	}
	return pi.Namespace.Annotations
}
