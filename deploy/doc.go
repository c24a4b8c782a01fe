// Package deploy holds what operators install beside the binary, and the
// tests that keep it honest:
//
//   - grafana/hamal.json: a dashboard (lag per channel, throughput,
//     errors, DAG, checkpoint age).
//   - prometheus/alerts.yaml: alerting rules (lag, channel in error,
//     checkpoint not advancing, source disconnected).
//   - systemd/hamal@.service: one unit instance per channel config.
//   - k8s/: a StatefulSet per channel with its ConfigMap, Secret, Service
//     and ServiceMonitor. Its manifests are checked against the Kubernetes
//     API types by a test in the separate module deploy/k8s, so the main
//     module does not depend on k8s.io.
//
// The test here collects every metric name a real channel registers and
// fails when the dashboard or the alerts name one that does not exist.
// The package has no Go code to import.
package deploy
