#!/usr/bin/env bash
# Start dockerd for a test-cluster node: the engine API on TCP 2375 inside the test
# network only (no TLS: the harness network is private to this machine), the cluster's
# registry trusted over plain HTTP.
set -euo pipefail
registry="${CLUSTER_REGISTRY:-registry:5000}"
exec dockerd \
  --host unix:///var/run/docker.sock \
  --host tcp://0.0.0.0:2375 \
  --tls=false \
  --insecure-registry "$registry" \
  --storage-driver overlay2 \
  "$@"
