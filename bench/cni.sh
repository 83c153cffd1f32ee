#!/usr/bin/env bash
# Benchmark of a CNI install through Grappe against `kubectl apply --server-side` + `kubectl
# rollout status` on the same lab in the same run, at 4 and at 500 nodes (bench/cni.py). Builds
# Grappe in release mode; each size gets a lab of its own, stopped at the end. The report is
# printed and saved in test-output/bench/.
#
#   bench/cni.sh [--sizes "4 500"] [--rounds 3]     (BENCH_NO_BUILD=1: target/release/grappe as it is)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO"

SIZES="4 500" ROUNDS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    *) die "unknown argument $1 (see the header of bench/cni.sh)" ;;
  esac
done

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
  timed "cargo leptos build --release" cargo leptos build --release
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
  cat > "$WORK/grappe.toml" <<TOML
listen = "127.0.0.1:$PORT"
database = "$WORK/grappe.db"
site_root = "$REPO/target/site"
manifest_mirror = "http://127.0.0.1:19181"

[[clusters]]
name = "bench"
kubeconfig = "$LAB_DIR/kubeconfig"
TOML
  GRAPPE="$REPO/target/release/grappe"
  PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "$PASSWORD" | "$GRAPPE" --config "$WORK/grappe.toml" user add bench --role admin --password-stdin >/dev/null
  "$GRAPPE" --config "$WORK/grappe.toml" serve > "$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  python3 "$REPO/bench/cni.py" --url "http://127.0.0.1:$PORT" --user bench --password "$PASSWORD" \
    --cluster bench --kubeconfig "$LAB_DIR/kubeconfig" --manifest "$GRAPPE_MANIFESTS/calico-v3.25.1.yaml" \
    --pid "$SERVER" --rounds "$ROUNDS" | tee -a "$REPORT"
  echo | tee -a "$REPORT"
  cleanup
done
say "report: $REPORT"
