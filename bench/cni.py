#!/usr/bin/env python3
"""Benchmark of a Calico v3.25.1 install through Grappe against the kubectl baseline, on the
same lab in the same run:

  baseline: kubectl apply --server-side -f calico.yaml
            + kubectl rollout status ds/calico-node -n kube-system
            (then, timed apart: + rollout status of calico-kube-controllers + kubectl wait for
            every node Ready, which a Grappe run also waits for)
  Grappe:   plan (server-side dry run, checks) + execute until the run succeeds (CRDs
            Established, every object applied, calico-node and calico-kube-controllers rolled
            out, every node Ready)

Between two installs Calico is deleted with kubectl (15 s after the install) and the script
waits until its pods are gone. Prints a Markdown table with the ratio of the medians. Standard library only.

Usage: bench/cni.py --url URL --user U --password P --cluster NAME --kubeconfig FILE
                    --manifest calico-v3.25.1.yaml --pid GRAPPE_PID [--rounds 3]
"""

import argparse
import statistics
import time

from grappe_client import Grappe, kubectl, rss_mib


def remove_calico(kubeconfig, manifest):
    # A CRD deleted within seconds of its creation can stay Terminating for minutes
    # ("InstanceDeletionFailed: could not list instances: storage is (re)initializing", the API
    # server's watch cache of the new resource not yet ready): let it settle first.
    time.sleep(15)
    kubectl(kubeconfig, "delete", "--ignore-not-found", "--wait=true", "-f", manifest)
    deadline = time.time() + 600
    while kubectl(kubeconfig, "get", "pods", "-n", "kube-system", "-l", "k8s-app=calico-node",
                  "-o", "name").strip():
        if time.time() > deadline:
            raise SystemExit("calico-node pods still there 10 min after the delete")
        time.sleep(1)


def kubectl_install(kubeconfig, manifest):
    """The issue's baseline (apply + rollout status of calico-node), then the same plus what a
    Grappe run also waits for: calico-kube-controllers available and every node Ready."""
    start = time.perf_counter()
    kubectl(kubeconfig, "apply", "--server-side", "-f", manifest)
    kubectl(kubeconfig, "rollout", "status", "ds/calico-node", "-n", "kube-system", "--timeout=30m")
    rollout = time.perf_counter() - start
    kubectl(kubeconfig, "rollout", "status", "deploy/calico-kube-controllers", "-n", "kube-system",
            "--timeout=30m")
    kubectl(kubeconfig, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=30m")
    return rollout, time.perf_counter() - start


def grappe_install(g, cluster, password):
    start = time.perf_counter()
    while True:
        plan = g.call("plan_cni_install", {"cluster": cluster, "source": "calico-v3.25.1"})
        if all(c["level"] != "fail" for c in plan["checks"]):
            break
        if time.perf_counter() - start > 120:
            raise SystemExit(f"plan not runnable: {plan['checks']}")
        time.sleep(1)  # the state may still be settling after the previous removal
    planned = time.perf_counter() - start
    run = g.call("start_cni_install", {
        "cluster": cluster, "manifest_sha256": plan["manifest_sha256"],
        "plan_hash": plan["hash"], "confirm": cluster,
        "password": password,  # asked again once the login is older than session.reauth_after
    })
    view = g.wait_run(run, poll=0.2)
    status = view["summary"]["status"]
    total = time.perf_counter() - start
    if status != "succeeded":
        raise SystemExit(f"run {run} {status}: {view['summary'].get('error')}")
    return planned, total


def main():
    ap = argparse.ArgumentParser()
    for arg in ("--url", "--user", "--password", "--cluster", "--kubeconfig", "--manifest"):
        ap.add_argument(arg, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    g = Grappe(a.url, a.user, a.password)
    nodes = len(kubectl(a.kubeconfig, "get", "nodes", "-o", "name").split())

    base, same, plans, totals = [], [], [], []
    for _ in range(a.rounds):
        remove_calico(a.kubeconfig, a.manifest)
        rollout, everything = kubectl_install(a.kubeconfig, a.manifest)
        base.append(rollout)
        same.append(everything)
        remove_calico(a.kubeconfig, a.manifest)
        planned, total = grappe_install(g, a.cluster, a.password)
        plans.append(planned)
        totals.append(total)
    remove_calico(a.kubeconfig, a.manifest)

    kb, ks = statistics.median(base), statistics.median(same)
    gt, gp = statistics.median(totals), statistics.median(plans)
    print(f"## Calico v3.25.1 install, {nodes} nodes, {a.rounds} rounds\n")
    print("| what | median | runs | vs kubectl |")
    print("| --- | --- | --- | --- |")
    print(f"| kubectl apply --server-side + rollout status | {kb:.1f} s | {', '.join(f'{x:.1f}' for x in base)} | 1x |")
    print(f"| kubectl, also waiting for calico-kube-controllers and every node Ready (what a Grappe run waits for) | {ks:.1f} s | {', '.join(f'{x:.1f}' for x in same)} | {ks / kb:.2f}x |")
    print(f"| Grappe plan + execute (run succeeded) | {gt:.1f} s | {', '.join(f'{x:.1f}' for x in totals)} | {gt / kb:.2f}x ({gt / ks:.2f}x the second) |")
    print(f"| of which the plan | {gp:.1f} s | {', '.join(f'{x:.1f}' for x in plans)} | |")
    print(f"\n- Grappe peak RSS: {rss_mib(a.pid, 'VmHWM:'):.0f} MiB")


if __name__ == "__main__":
    main()
