#!/usr/bin/env python3
"""Benchmark of draining one node that runs 110 pods (108 of a Deployment pinned to it by a
node label, plus its calico-node and kube-proxy DaemonSet pods) through Grappe against
`kubectl drain` with the same flags, on the same lab in the same run:

  baseline: kubectl drain NODE --delete-emptydir-data --ignore-daemonsets --force
  Grappe:   preview (plan_node_drain) + start_run until the run succeeds

Between two drains the node is uncordoned and the script waits until the 108 pods run on it
again. Grappe's resident memory is sampled every 50 ms during its drains. Prints a Markdown
table with the ratio of the medians. Standard library only.

Usage: bench/drain.py --url URL --user U --password P --cluster NAME --kubeconfig FILE
                      --node NODE --pid GRAPPE_PID [--replicas 108] [--rounds 3]
"""

import argparse
import statistics
import threading
import time

from grappe_client import Grappe, kubectl, rss_mib

FLAGS = ["--delete-emptydir-data", "--ignore-daemonsets", "--force"]


def pods_on(kubeconfig, node):
    """(running, terminating) pods on the node."""
    out = kubectl(kubeconfig, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}",
                  "-o", "jsonpath={range .items[*]}{.status.phase} {.metadata.deletionTimestamp}{\"\\n\"}{end}")
    lines = [l.split() for l in out.splitlines() if l.strip()]
    terminating = sum(1 for l in lines if len(l) > 1)
    running = sum(1 for l in lines if len(l) == 1 and l[0] == "Running")
    return running, terminating


def refill(kubeconfig, node, want):
    """Uncordons the node and waits until `want` pods run on it and none is terminating."""
    kubectl(kubeconfig, "uncordon", node)
    deadline = time.time() + 600
    while True:
        running, terminating = pods_on(kubeconfig, node)
        if running >= want and terminating == 0:
            return
        if time.time() > deadline:
            raise SystemExit(f"{node}: {running}/{want} pods running after 10 min")
        time.sleep(1)


def kubectl_drain(kubeconfig, node):
    start = time.perf_counter()
    kubectl(kubeconfig, "drain", node, *FLAGS, "--timeout=10m")
    return time.perf_counter() - start


def grappe_drain(g, cluster, node, password, pid):
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(rss_mib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    form = {"cluster": cluster, "nodes": node, "delete_emptydir_data": "on",
            "ignore_daemonsets": "on", "force": "on", "timeout": "600"}
    try:
        start = time.perf_counter()
        plan = g.call("plan_node_drain", form)
        if any(c["level"] == "fail" for c in plan["checks"]):
            raise SystemExit(f"drain preview not runnable: {plan['checks']}")
        planned = time.perf_counter() - start
        run = g.start(plan, password)
        view = g.wait_run(run)
        status = view["summary"]["status"]
        total = time.perf_counter() - start
    finally:
        stop.set()
        sampler.join()
    if status != "succeeded":
        raise SystemExit(f"run {run} {status}: {view['summary'].get('error')}")
    return planned, total, max(samples or [0.0])


def main():
    ap = argparse.ArgumentParser()
    for arg in ("--url", "--user", "--password", "--cluster", "--kubeconfig", "--node"):
        ap.add_argument(arg, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--replicas", type=int, default=108)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    g = Grappe(a.url, a.user, a.password)
    # The Deployment's pods plus the node's DaemonSet pods.
    refill(a.kubeconfig, a.node, a.replicas)
    time.sleep(3)  # let the scheduler fill the node up to its 110 pods
    on_node, _ = pods_on(a.kubeconfig, a.node)
    idle = rss_mib(a.pid)

    base, totals, plans, peaks = [], [], [], []
    for _ in range(a.rounds):
        base.append(kubectl_drain(a.kubeconfig, a.node))
        refill(a.kubeconfig, a.node, on_node)
        planned, total, peak = grappe_drain(g, a.cluster, a.node, a.password, a.pid)
        plans.append(planned)
        totals.append(total)
        peaks.append(peak)
        refill(a.kubeconfig, a.node, on_node)

    kb, gt, gp = statistics.median(base), statistics.median(totals), statistics.median(plans)
    print(f"## Drain of a node running {on_node} pods, {a.rounds} rounds\n")
    print("| what | median | runs | vs kubectl |")
    print("| --- | --- | --- | --- |")
    print(f"| kubectl drain {' '.join(FLAGS)} | {kb:.2f} s | {', '.join(f'{x:.2f}' for x in base)} | 1x |")
    print(f"| Grappe preview + run (succeeded) | {gt:.2f} s | {', '.join(f'{x:.2f}' for x in totals)} | {gt / kb:.2f}x |")
    print(f"| of which the preview | {gp:.2f} s | {', '.join(f'{x:.2f}' for x in plans)} | |")
    print(f"\n- Grappe RSS: {idle:.0f} MiB before the drains, at most {max(peaks):.0f} MiB during them")


if __name__ == "__main__":
    main()
