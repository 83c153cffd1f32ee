#!/usr/bin/env bash
# The shared part of the large-lab benchmarks (bench/views.sh, bench/ipam.sh): starts (or reuses)
# a lab of NODES nodes with Calico and PODS bare pods per worker, builds Grappe in release mode,
# runs it against the lab and measures with bench/WHAT.py, kubectl on the same lab as the
# baseline. The report is printed and saved in test-output/bench/WHAT-NODES-nodes.md.
#
#   bench/with-lab.sh WHAT [--nodes 5000] [--pods-per-node 30] [--down]
#   BENCH_LAB_DIR=DIR     measures on a running lab as it is, no lab up
#   BENCH_NO_BUILD=1      uses $CARGO_TARGET_DIR/release/grappe as it is
#   BENCH_ARGS="..."      more options for bench/WHAT.py (ipam: --baseline-runs 1 where one
#                         kubectl listing of 150,000 pods takes minutes)
#
# A 5,000-node lab registers in about 4 minutes on 2 cores and is Ready with Calico in about
# 25; pods are created at the API server's pace (bound directly, not scheduled), about 60 per
# second. A second run on the same lab starts in seconds. --down stops the lab at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO"

WHAT="${1:-}"
[[ -f "$REPO/bench/$WHAT.py" ]] || die "usage: bench/with-lab.sh views|ipam [--nodes N] [--pods-per-node N] [--down]"
shift
NODES=5000 PODS=30 DOWN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) NODES="$2"; shift 2 ;;
    --pods-per-node) PODS="$2"; shift 2 ;;
    --down) DOWN=1; shift ;;
    *) die "unknown argument $1 (see the header of bench/with-lab.sh)" ;;
  esac
done

if [[ -n "${BENCH_LAB_DIR:-}" ]]; then
  LAB_DIR="$BENCH_LAB_DIR"
  say "reusing the lab in $LAB_DIR as it is"
else
  LAB_DIR="$CACHE/lab/run/bench-$NODES"
  say "lab: $NODES nodes in $LAB_DIR"
  timed "lab up" "$REPO/lab/lab" up --dir "$LAB_DIR" --port-base 19500 --nodes "$NODES" \
    --cni calico --pods-per-node "$PODS"
fi
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
  build_release
fi

WORK="$(mktemp -d /tmp/grappe-bench.XXXXXX)"
PORT=18090
cleanup() {
  kill "${SERVER:-}" 2>/dev/null || true
  wait "${SERVER:-}" 2>/dev/null || true
  rm -rf "$WORK"
  if [[ $DOWN == 1 ]]; then "$REPO/lab/lab" down --dir "$LAB_DIR" >/dev/null; fi
}
trap cleanup EXIT
write_config "$WORK/grappe.toml" "$PORT" bench "$LAB_DIR/kubeconfig"
start_grappe "$CARGO_TARGET_DIR/release/grappe" "$WORK/grappe.toml" "$PORT" "$WORK/server.log" bench viewer

OUT="$REPO/test-output/bench"
mkdir -p "$OUT"
REPORT="$OUT/$WHAT-$NODES-nodes.md"
python3 "$REPO/bench/$WHAT.py" --url "http://127.0.0.1:$PORT" --user bench --password "$PASSWORD" \
  --cluster bench --kubeconfig "$LAB_DIR/kubeconfig" --pid "$SERVER" ${BENCH_ARGS:-} | tee "$REPORT"
say "report: $REPORT"
