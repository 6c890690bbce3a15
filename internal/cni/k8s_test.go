package cni

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestClientsetPods(t *testing.T) {
	p := pod("prod", "web", nil, map[string]string{AnnotationIPv4Pools: `["a"]`})
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Annotations: map[string]string{AnnotationIPv4Pools: `["b"]`}}}
	tests := []struct {
		name        string
		objs        []runtime.Object
		forbidNS    bool
		wantErr     bool
		wantNSAnnot bool
	}{
		{name: "pod and namespace", objs: []runtime.Object{p, ns}, wantNSAnnot: true},
		{name: "namespace forbidden is tolerated", objs: []runtime.Object{p, ns}, forbidNS: true},
		{name: "missing pod", objs: []runtime.Object{ns}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset(tt.objs...)
			if tt.forbidNS {
				cs.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "prod", nil)
				})
			}
			info, err := ClientsetPods{Client: cs}.PodInfo(context.Background(), "prod", "web")
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error for a missing pod")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.annotations()[AnnotationIPv4Pools] != `["a"]` || (info.nsAnnotations()[AnnotationIPv4Pools] == `["b"]`) != tt.wantNSAnnot {
				t.Fatalf("pod annotations %v, namespace annotations %v", info.annotations(), info.nsAnnotations())
			}
		})
	}
}
