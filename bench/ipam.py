#!/usr/bin/env python3
"""Benchmark of Grappe's IPAM page (the `calicoctl ipam check` of issue 20) on a large lab.

Measures, in one run and against the same lab:
  - the IPAM page's SSR latency p50/p99 on a warm state (the page a browser loads) and the
    `cluster_ipam` server function's (what a live reload fetches), with the allocations and
    leaks it reports; and the first load after a change (a node label), which computes the
    check again;
  - Grappe's RSS before the first IPAM request and after the samples (the check's own growth),
    and its peak;
  - the baselines: with --calicoctl PATH, `calicoctl ipam check` on the same lab (the project's
    scripts cannot build calicoctl: github.com/projectcalico/calico answers 403 at the Go
    module proxy; one built by hand from Calico's source serves), with its leak count; and,
    unless --no-kubectl, what the check starts from by hand: `kubectl get ipamblocks,
    ipamhandles,blockaffinities -o json` plus `kubectl get pods -A -o json` (p50 over a few
    runs), each as a ratio;
  - parity: the leaks (by reason) and allocations read independently from the API's objects
    (bench/ipam_check.py) against Grappe's, and the pod addresses several pods hold.

Usage: bench/ipam.py --url URL --user U --password P --cluster NAME --kubeconfig FILE
                     --pid GRAPPE_PID [--samples 100] [--baseline-runs 5] [--no-kubectl]
                     [--calicoctl PATH]
Prints a Markdown table. Standard library only.
"""

import statistics
import subprocess
import tempfile
import time

import ipam_check
from grappe_client import Grappe, kubectl, lab_bench_args, pct, rss_mib

IPAM_OBJECTS = ("ipamblocks.crd.projectcalico.org,ipamhandles.crd.projectcalico.org,"
                "blockaffinities.crd.projectcalico.org")


def main():
    ap = lab_bench_args()
    ap.add_argument("--baseline-runs", type=int, default=5)
    ap.add_argument("--changed-samples", type=int, default=20)
    ap.add_argument("--no-kubectl", action="store_true", help="leave the kubectl baseline out")
    ap.add_argument("--calicoctl", help="a calicoctl binary: its `ipam check` is a second baseline and "
                    "its leak count a parity reference")
    a = ap.parse_args()

    g = Grappe(a.url, a.user, a.password)
    # Wait until the watches hold the allocations (the state is warm).
    deadline = time.time() + 900
    while True:
        v = g.call("cluster_ipam", {"cluster": a.cluster})
        allocated = sum(p.get("allocated", 0) for p in v.get("pools", []))
        # Every pod, block and handle read (until then leaks are not told: `unread`).
        if allocated > 0 and v.get("datastore_ready") is not False and not v.get("unread"):
            break
        if time.time() > deadline:
            raise SystemExit(f"no allocation in Grappe's IPAM view after 15 min: {str(v)[:300]}")
        time.sleep(5)
    time.sleep(10)
    rss_before = rss_mib(a.pid)

    page, fn = [], []
    size = 0
    for _ in range(a.samples):
        t, status, body = g.get(f"/c/{a.cluster}/ipam")
        if status != 200:
            raise SystemExit(f"IPAM page: HTTP {status}")
        page.append(t)
        size = len(body)
        start = time.perf_counter()
        v = g.call("cluster_ipam", {"cluster": a.cluster})
        fn.append(time.perf_counter() - start)
    rss_after, rss_peak = rss_mib(a.pid), rss_mib(a.pid, "VmHWM:")

    # After a change: the first page load computes the check again (a node label bumps the
    # state's version; a label is what the IPAM check ignores, so the figures stay comparable).
    node = kubectl(a.kubeconfig, "get", "nodes", "-o", "name").split()[1].split("/")[1]
    changed = []
    for i in range(a.changed_samples):
        kubectl(a.kubeconfig, "label", "node", node, f"bench.grappe.dev/ipam={i}", "--overwrite")
        time.sleep(1.5)
        t, status, _ = g.get(f"/c/{a.cluster}/ipam")
        if status != 200:
            raise SystemExit(f"IPAM page: HTTP {status}")
        changed.append(t)
    kubectl(a.kubeconfig, "label", "node", node, "bench.grappe.dev/ipam-")

    # Grappe's figures first: what comes after reads the whole lab again and may not finish
    # on a machine the lab fills.
    allocated = sum(p.get("allocated", 0) for p in v.get("pools", []))
    leaked = v["leaked"]["total"]
    ms = lambda s: f"{s * 1000:.0f} ms"
    warm, after = pct(page, 99), pct(changed, 99)
    print(f"## IPAM page, {v.get('nodes_total')} nodes, {allocated} allocated addresses\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| IPAM page (SSR, {size // 1024} KiB) p50 / p99 | {ms(pct(page, 50))} / {ms(warm)} |")
    print(f"| `cluster_ipam` server function p50 / p99 | {ms(pct(fn, 50))} / {ms(pct(fn, 99))} |")
    print(f"| IPAM page, first load after a change (the check computed), p50 / p99 of {len(changed)} | {ms(pct(changed, 50))} / {ms(after)} |")
    print(f"| Grappe RSS before the first IPAM request / after {a.samples} / peak | {rss_before:.0f} / {rss_after:.0f} / {rss_peak:.0f} MiB |")
    print(f"| leaked addresses (Grappe) | {leaked} |", flush=True)

    # calicoctl's own check when one is given (the baseline the issue asks for), then kubectl's
    # JSON to a file, as a person would keep it to read (captured by Python, the pods' JSON
    # beside kubectl's own copy risks the OOM killer; kubectl's copy alone was 9.3 GB at
    # 110,000 pods: --no-kubectl leaves it out when the lab fills the machine).
    ctl = [ipam_check.calicoctl(a.calicoctl, a.kubeconfig) for _ in range(a.baseline_runs)] if a.calicoctl else []
    base = []
    with tempfile.TemporaryFile() as out:
        for _ in range(0 if a.no_kubectl else a.baseline_runs):
            out.seek(0)
            out.truncate()
            start = time.perf_counter()
            for what in (IPAM_OBJECTS, "pods"):
                subprocess.run(["kubectl", "--kubeconfig", a.kubeconfig, "get", what, "-A", "-o", "json"],
                               stdout=out, check=True)
            base.append(time.perf_counter() - start)
    for name, runs in (("`calicoctl ipam check`", [t for t, _ in ctl]),
                       ("kubectl get IPAM objects + pods -o json", base)):
        if runs:
            b50 = statistics.median(runs)
            print(f"| baseline: {name}, p50 of {len(runs)} | {ms(b50)} |")
            print(f"| ratio page p99 / {name} (warm; after a change) | {warm / b50:.5f}x; {after / b50:.5f}x |")
    if ctl:
        print(f"| leaked addresses: Grappe / calicoctl | {leaked} / {ctl[-1][1]} |", flush=True)

    # The same leaks read independently from the API's objects (the parity reference).
    ref = ipam_check.check(a.kubeconfig)
    same = "same" if (leaked, allocated) == (ref["leaked"], ref["allocations"]) else "DIFFERENT"
    print(f"| read from the API's objects: {ref['nodes']} nodes, {ref['blocks']} blocks, {ref['pods']} pods | |")
    print(f"| leaked addresses: Grappe / read from the API's objects | {leaked} / {ref['leaked']} ({same}) |")
    print(f"| allocations: Grappe / read from the API's objects | {allocated} / {ref['allocations']} |")
    for why, n in ref["leaks"].most_common():
        print(f"| leaked because {why} | {n} |")
    print(f"| pod addresses held by two pods or more (pods) | {ref['shared_addresses']} ({ref['pods_on_shared']}) |")


if __name__ == "__main__":
    main()
