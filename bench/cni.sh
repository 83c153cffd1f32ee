#!/usr/bin/env bash
# Benchmark of CNI installs through Grappe against kubectl on the same lab in the same run, at 4
# and at 500 nodes (bench/cni.py): Calico v3.25.1's manifest against `kubectl apply
# --server-side` + `kubectl rollout status`, and Calico v3.32.1 with the Tigera operator against
# `kubectl apply --server-side` of its three files + `kubectl wait tigerastatus`. Builds Grappe in
# release mode; each size gets a lab of its own, stopped at the end. The report is printed and
# saved in test-output/bench/.
#
#   bench/cni.sh [--sizes "4 500"] [--rounds 3] [--cni "manifest operator"]
#                (BENCH_NO_BUILD=1: $CARGO_TARGET_DIR/release/grappe as it is)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO"

SIZES="4 500" ROUNDS=3 CNIS="manifest operator"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --cni) CNIS="$2"; shift 2 ;;
    *) die "unknown argument $1 (see the header of bench/cni.sh)" ;;
  esac
done

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
  build_release
fi
serve_manifests 19181
OUT="$REPO/test-output/bench"
mkdir -p "$OUT"
REPORT="$OUT/cni-install.md"
: > "$REPORT"
for NODES in $SIZES; do
  LAB_DIR="$(mktemp -d /tmp/grappe-bench-cni.XXXXXX)"
  WORK="$(mktemp -d /tmp/grappe-bench.XXXXXX)"
  cleanup() {
    kill "${SERVER:-}" 2>/dev/null || true
    wait "${SERVER:-}" 2>/dev/null || true
    "$REPO/lab/lab" down --dir "$LAB_DIR" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  }
  trap 'cleanup; kill $MIRROR_PID 2>/dev/null || true' EXIT
  timed "lab up ($NODES nodes)" "$REPO/lab/lab" up --dir "$LAB_DIR" --port-base 19600 --nodes "$NODES"
  PORT=18091
  write_config "$WORK/grappe.toml" "$PORT" bench "$LAB_DIR/kubeconfig" "http://127.0.0.1:19181"
  start_grappe "$CARGO_TARGET_DIR/release/grappe" "$WORK/grappe.toml" "$PORT" "$WORK/server.log" bench admin
  for CNI in $CNIS; do
    case "$CNI" in
      manifest) WHAT=(--manifest "$GRAPPE_MANIFESTS/calico-v3.25.1.yaml") ;;
      operator) WHAT=(--operator "$GRAPPE_MANIFESTS/calico-operator-v3.32.1") ;;
      *) die "unknown --cni $CNI (manifest or operator)" ;;
    esac
    python3 "$REPO/bench/cni.py" --url "http://127.0.0.1:$PORT" --user bench --password "$PASSWORD" \
      --cluster bench --kubeconfig "$LAB_DIR/kubeconfig" "${WHAT[@]}" \
      --pid "$SERVER" --rounds "$ROUNDS" | tee -a "$REPORT"
    echo | tee -a "$REPORT"
  done
  cleanup
done
say "report: $REPORT"
