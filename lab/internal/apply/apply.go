// Package apply applies and deletes multi-document YAML manifests with server-side apply, the
// way `kubectl apply --server-side` and `kubectl delete -f` do, for `lab up --cni` and
// `lab cni`.
package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the lab's server-side apply identity.
const FieldManager = "lab"

// Read parses a multi-document YAML file into objects (empty documents skipped).
func Read(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if len(obj) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
	return objs, nil
}

// Client applies objects.
type Client struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
}

// New builds a client from a rest config.
func New(cfg *rest.Config) (*Client, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

func (c *Client) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		// A CRD applied a moment ago: refresh discovery once.
		c.mapper.Reset()
		mapping, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, err
		}
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		return c.dyn.Resource(mapping.Resource).Namespace(ns), nil
	}
	return c.dyn.Resource(mapping.Resource), nil
}

// Apply server-side applies every object in order, retrying kinds whose CRD is not served yet.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, obj := range objs {
		data, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		var lastErr error
		for attempt := 0; attempt < 60; attempt++ {
			var res dynamic.ResourceInterface
			res, lastErr = c.resource(obj)
			if lastErr == nil {
				force := true
				_, lastErr = res.Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
					metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
			}
			if lastErr == nil || !(meta.IsNoMatchError(lastErr) || apierrors.IsNotFound(lastErr)) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if lastErr != nil {
			return fmt.Errorf("apply %s %s: %w", obj.GetKind(), obj.GetName(), lastErr)
		}
	}
	return nil
}

// Delete deletes every object (missing ones are fine), in reverse order, in the foreground.
func (c *Client) Delete(ctx context.Context, objs []*unstructured.Unstructured) error {
	policy := metav1.DeletePropagationForeground
	for i := len(objs) - 1; i >= 0; i-- {
		obj := objs[i]
		res, err := c.resource(obj)
		if err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return err
		}
		err = res.Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}
