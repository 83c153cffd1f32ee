#!/usr/bin/env bash
# Benchmark of a node drain through Grappe against `kubectl drain` with the same flags on the
# same lab in the same run (bench/drain.py): a lab with Calico, one worker labelled
# bench=drain and a Deployment of 108 pods pinned to it (110 pods on the node with its
# calico-node and kube-proxy pods: the kubelet's default maximum). Builds Grappe in release
# mode; the lab is stopped at the end. The report is printed and saved in test-output/bench/.
#
#   bench/drain.sh [--rounds 3]     (BENCH_NO_BUILD=1: $CARGO_TARGET_DIR/release/grappe as it is;
#                                    BENCH_GRAPPE_BIN=path: another build, e.g. a debug one to check the script)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO"

ROUNDS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    *) die "unknown argument $1 (see the header of bench/drain.sh)" ;;
  esac
done

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
  build_release
fi
OUT="$REPO/test-output/bench"
mkdir -p "$OUT"
REPORT="$OUT/drain.md"
LAB_DIR="$(mktemp -d /tmp/grappe-bench-drain.XXXXXX)"
WORK="$(mktemp -d /tmp/grappe-bench.XXXXXX)"
cleanup() {
  kill "${SERVER:-}" 2>/dev/null || true
  wait "${SERVER:-}" 2>/dev/null || true
  "$REPO/lab/lab" down --dir "$LAB_DIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
timed "lab up (3 nodes, Calico)" "$REPO/lab/lab" up --dir "$LAB_DIR" --port-base 19700 --nodes 3 --cni calico
export KUBECONFIG="$LAB_DIR/kubeconfig"
NODE="$(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{.items[0].metadata.name}')"
kubectl label node "$NODE" bench=drain --overwrite >/dev/null
# The sample demo/web budget (maxUnavailable 0) would hold both drains: the benchmark measures
# the drain itself.
kubectl -n demo patch pdb web --type=merge -p '{"spec":{"maxUnavailable":1}}' >/dev/null
kubectl create namespace bench --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: filler, namespace: bench}
spec:
  replicas: 108
  selector: {matchLabels: {app: filler}}
  template:
    metadata: {labels: {app: filler}}
    spec:
      nodeSelector: {bench: drain}
      containers: [{name: pause, image: registry.k8s.io/pause:3.10}]
EOF
PORT=18092
write_config "$WORK/grappe.toml" "$PORT" bench "$KUBECONFIG"
start_grappe "${BENCH_GRAPPE_BIN:-$CARGO_TARGET_DIR/release/grappe}" "$WORK/grappe.toml" "$PORT" "$WORK/server.log" bench operator
python3 "$REPO/bench/drain.py" --url "http://127.0.0.1:$PORT" --user bench --password "$PASSWORD" \
  --cluster bench --kubeconfig "$KUBECONFIG" --node "$NODE" --pid "$SERVER" --rounds "$ROUNDS" | tee "$REPORT"
say "report: $REPORT"
