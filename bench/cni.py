#!/usr/bin/env python3
"""Benchmark of a Calico install through Grappe against the kubectl baseline, on the same lab
in the same run. With --manifest (Calico v3.25.1's calico.yaml):

  baseline: kubectl apply --server-side -f calico.yaml
            + kubectl rollout status ds/calico-node -n kube-system
            (then, timed apart: + rollout status of calico-kube-controllers + kubectl wait for
            every node Ready, which a Grappe run also waits for)
  Grappe:   plan (server-side dry run, checks) + execute until the run succeeds (CRDs
            Established, every object applied, calico-node and calico-kube-controllers rolled
            out, every node Ready)

With --operator DIR (Calico v3.32.1 with the Tigera operator, DIR holding its files):

  baseline: kubectl apply --server-side of operator-crds.yaml, tigera-operator.yaml and the
            Installation of custom-resources.yaml (upstream's defaults, which Grappe's plan also
            builds), `kubectl wait --for=condition=Established` on the CRDs in between (the
            Installation's kind must exist), then kubectl wait tigerastatus/calico
            --for=condition=Available (once the operator has created it) and every node Ready.
            Only `calico`: upstream's `--all` waits also for `tiers`, which needs the Calico
            API server, which cannot run on the lab's KWOK nodes (README, "The lab").
  Grappe:   plan + execute of catalog entry calico-operator-v3.32.1 until the run succeeds
            (TigeraStatus calico Available, every node Ready).

Between two installs Calico is deleted with kubectl (15 s after the install) and the script
waits until its pods are gone. Prints a Markdown table with the ratio of the medians. Standard library only.

Usage: bench/cni.py --url URL --user U --password P --cluster NAME --kubeconfig FILE
                    (--manifest calico-v3.25.1.yaml | --operator DIR) --pid GRAPPE_PID [--rounds 3]
"""

import argparse
import os
import statistics
import tempfile
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


class Manifest:
    """Calico v3.25.1 from its manifest, in kube-system."""

    entry = "calico-v3.25.1"
    title = "Calico v3.25.1 install"
    baseline = "kubectl apply --server-side + rollout status"

    def __init__(self, manifest):
        self.manifest = manifest

    def remove(self, kubeconfig):
        remove_calico(kubeconfig, self.manifest)

    def kubectl_install(self, kubeconfig):
        return kubectl_install(kubeconfig, self.manifest)


class Operator:
    """Calico v3.32.1 with the Tigera operator, in calico-system."""

    entry = "calico-operator-v3.32.1"
    title = "Calico v3.32.1 install with the Tigera operator"
    baseline = "kubectl apply --server-side of the three files + wait tigerastatus/calico Available"

    def __init__(self, directory, kubeconfig):
        self.crds = os.path.join(directory, "operator-crds.yaml")
        self.operator = os.path.join(directory, "tigera-operator.yaml")
        with open(os.path.join(directory, "custom-resources.yaml")) as f:
            docs = f.read().split("\n---")
        installation = next(d for d in docs if "kind: Installation" in d)
        # The pool in kubeadm's podSubnet, as Grappe's plan defaults it (the operator refuses
        # a pool outside the cluster's pod network: larger labs use 100.64.0.0/10).
        config = kubectl(kubeconfig, "get", "cm", "kubeadm-config", "-n", "kube-system",
                         "-o", "jsonpath={.data.ClusterConfiguration}")
        subnet = next((line.split(":", 1)[1].strip() for line in config.splitlines()
                       if line.strip().startswith("podSubnet:")), "192.168.0.0/16")
        installation = installation.replace("cidr: 192.168.0.0/16", f"cidr: {subnet.split(',')[0]}")
        fd, self.installation = tempfile.mkstemp(suffix=".yaml", prefix="installation-")
        with os.fdopen(fd, "w") as f:
            f.write(installation)

    def remove(self, kubeconfig):
        time.sleep(15)  # as remove_calico: let new CRDs settle before deleting them
        if "installations.operator.tigera.io" in kubectl(kubeconfig, "get", "crd", "-o", "name"):
            # The Installation first, while the operator runs; then calico-system goes with it
            # (the garbage collector follows its owner reference), which needs the
            # Installation's kind to still exist: the operator and the CRDs only after that.
            kubectl(kubeconfig, "delete", "installation", "--all", "--ignore-not-found",
                    "--wait=true", "--timeout=10m")
            deadline = time.time() + 600
            while kubectl(kubeconfig, "get", "ns", "calico-system", "--ignore-not-found", "-o", "name").strip():
                if time.time() > deadline:
                    raise SystemExit("calico-system still there 10 min after the Installation's delete")
                time.sleep(1)
        for f in (self.operator, self.crds):
            kubectl(kubeconfig, "delete", "--ignore-not-found", "--wait=true", "-f", f)

    def kubectl_install(self, kubeconfig):
        start = time.perf_counter()
        kubectl(kubeconfig, "apply", "--server-side", "-f", self.crds)
        kubectl(kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=5m")
        kubectl(kubeconfig, "apply", "--server-side", "-f", self.operator)
        kubectl(kubeconfig, "apply", "--server-side", "-f", self.installation)
        deadline = time.time() + 1800
        while not kubectl(kubeconfig, "get", "tigerastatus", "calico", "--ignore-not-found", "-o", "name").strip():
            if time.time() > deadline:
                raise SystemExit("no TigeraStatus calico after 30 min")
            time.sleep(0.2)
        kubectl(kubeconfig, "wait", "tigerastatus/calico", "--for=condition=Available", "--timeout=30m")
        available = time.perf_counter() - start
        kubectl(kubeconfig, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=30m")
        return available, time.perf_counter() - start


def grappe_install(g, cluster, password, entry):
    start = time.perf_counter()
    while True:
        plan = g.call("plan_cni_install", {"cluster": cluster, "source": entry})
        if all(c["level"] != "fail" for c in plan["checks"]):
            break
        if time.perf_counter() - start > 120:
            raise SystemExit(f"plan not runnable: {plan['checks']}")
        time.sleep(1)  # the state may still be settling after the previous removal
    planned = time.perf_counter() - start
    run = g.start(plan, password)  # the password: asked again once the login is older than session.reauth_after
    view = g.wait_run(run, poll=0.2)
    status = view["summary"]["status"]
    total = time.perf_counter() - start
    if status != "succeeded":
        raise SystemExit(f"run {run} {status}: {view['summary'].get('error')}")
    return planned, total


def main():
    ap = argparse.ArgumentParser()
    for arg in ("--url", "--user", "--password", "--cluster", "--kubeconfig"):
        ap.add_argument(arg, required=True)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--manifest")
    what.add_argument("--operator")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    cni = Manifest(a.manifest) if a.manifest else Operator(a.operator, a.kubeconfig)
    g = Grappe(a.url, a.user, a.password)
    nodes = len(kubectl(a.kubeconfig, "get", "nodes", "-o", "name").split())

    base, same, plans, totals = [], [], [], []
    for _ in range(a.rounds):
        cni.remove(a.kubeconfig)
        rollout, everything = cni.kubectl_install(a.kubeconfig)
        base.append(rollout)
        same.append(everything)
        cni.remove(a.kubeconfig)
        planned, total = grappe_install(g, a.cluster, a.password, cni.entry)
        plans.append(planned)
        totals.append(total)
    cni.remove(a.kubeconfig)

    kb, ks = statistics.median(base), statistics.median(same)
    gt, gp = statistics.median(totals), statistics.median(plans)
    print(f"## {cni.title}, {nodes} nodes, {a.rounds} rounds\n")
    print("| what | median | runs | vs kubectl |")
    print("| --- | --- | --- | --- |")
    print(f"| {cni.baseline} | {kb:.1f} s | {', '.join(f'{x:.1f}' for x in base)} | 1x |")
    also = "calico-kube-controllers and " if a.manifest else ""
    print(f"| kubectl, also waiting for {also}every node Ready (what a Grappe run waits for) | {ks:.1f} s | {', '.join(f'{x:.1f}' for x in same)} | {ks / kb:.2f}x |")
    print(f"| Grappe plan + execute (run succeeded) | {gt:.1f} s | {', '.join(f'{x:.1f}' for x in totals)} | {gt / kb:.2f}x ({gt / ks:.2f}x the second) |")
    print(f"| of which the plan | {gp:.1f} s | {', '.join(f'{x:.1f}' for x in plans)} | |")
    print(f"\n- Grappe peak RSS: {rss_mib(a.pid, 'VmHWM:'):.0f} MiB")


if __name__ == "__main__":
    main()
