// Package k8s holds the Kubernetes manifests of one Hamal channel
// (StatefulSet, ConfigMap, Secret, Service, ServiceMonitor, NetworkPolicy)
// and a test that decodes each strictly against the Kubernetes API types
// and checks that they refer to each other correctly. It is a module of its own so that
// the main module does not depend on k8s.io; run its test with
// `cd deploy/k8s && go test ./...` (make test does).
package k8s
