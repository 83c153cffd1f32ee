#!/usr/bin/env python3
"""Benchmark of Grappe's live cluster views against a running Grappe and its lab.

Measures, in one run and against the same lab:
  - nodes page SSR latency p50/p99 (first page, and a filtered page) and overview latency,
    next to `kubectl get nodes -o wide` on the same lab (the baseline), as ratios;
  - Grappe's RSS (current and peak);
  - the time from a change in the cluster (kubectl label) to the event reaching an open
    event stream, and to the nodes page showing it;
  - bytes per second sent to one browser while the cluster changes 20 times per second (the
    event stream plus the page reload each event triggers, as the browser does);
  - LIST requests the API server served during the steady-state window (all clients).

Usage: bench/views.py --url URL --user U --password P --cluster NAME --kubeconfig FILE
                      --pid GRAPPE_PID [--samples 100] [--steady 120]
Prints a Markdown table. Standard library only.
"""

import concurrent.futures
import http.client
import json
import re
import ssl
import statistics
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from grappe_client import Grappe, kubectl, lab_bench_args, pct, rss_mib



def timed_kubectl(kubeconfig, *args):
    start = time.perf_counter()
    out = kubectl(kubeconfig, *args)
    return time.perf_counter() - start, out


class Kube:
    """PATCHes nodes straight over HTTPS with the kubeconfig's client certificate: spawning
    kubectl per change costs ~100 ms of CPU each, which capped the change rate below 20/s."""

    def __init__(self, kubeconfig):
        raw = kubectl(kubeconfig, "config", "view", "--raw", "-o", "json")
        cfg = json.loads(raw)
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port
        self.ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.ctx.load_cert_chain(user["client-certificate"], user["client-key"])
        self.local = threading.local()

    def patch_labels(self, node, labels):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
            self.local.conn = conn
        body = json.dumps({"metadata": {"labels": labels}})
        conn.request("PATCH", f"/api/v1/nodes/{node}", body=body,
                     headers={"Content-Type": "application/merge-patch+json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"PATCH node {node}: HTTP {resp.status}")


def apiserver_lists(kubeconfig):
    out = kubectl(kubeconfig, "get", "--raw", "/metrics")
    counts = {}
    for line in out.splitlines():
        if line.startswith("apiserver_request_total{") and 'verb="LIST"' in line:
            resource = re.search(r'resource="([^"]*)"', line)
            name = resource.group(1) if resource else "?"
            counts[name] = counts.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def main():
    ap = lab_bench_args()
    ap.add_argument("--steady", type=int, default=120, help="seconds of steady state for LIST counts")
    a = ap.parse_args()

    g = Grappe(a.url, a.user, a.password)
    nodes_json = kubectl(a.kubeconfig, "get", "nodes", "-o", "json")
    nodes = [n["metadata"]["name"] for n in json.loads(nodes_json)["items"]]
    pods_out = kubectl(a.kubeconfig, "get", "pods", "-A", "--no-headers", "-o", "name")
    pod_count = len(pods_out.splitlines())

    # Wait for the watches to hold every node.
    deadline = time.time() + 600
    want = f"{len(nodes)}<!> / <!>{len(nodes)}".encode()
    while True:
        _, status, body = g.get(f"/c/{a.cluster}/nodes")
        if status == 200 and want in body:
            break
        if time.time() > deadline:
            raise SystemExit("Grappe never listed every node")
        time.sleep(1)
    time.sleep(5)

    rows = []

    def measure(label, path):
        g.get(path)  # warm
        times = [g.get(path)[0] * 1000 for _ in range(a.samples)]
        size = len(g.get(path)[2])
        rows.append((label, statistics.median(times), pct(times, 99), size))

    measure("nodes page, first page (50 rows)", f"/c/{a.cluster}/nodes")
    measure("nodes page, filtered (search + status)", f"/c/{a.cluster}/nodes?q=orion-w01&status=notready")
    measure("overview", f"/c/{a.cluster}/overview")
    measure("node detail", f"/c/{a.cluster}/nodes/{nodes[len(nodes) // 2]}")
    kube = [timed_kubectl(a.kubeconfig, "get", "nodes", "-o", "wide")[0] * 1000 for _ in range(10)]
    kube_p50 = statistics.median(kube)

    rss, hwm = rss_mib(a.pid), rss_mib(a.pid, "VmHWM:")

    # Change to event, and to the page showing it.
    target = nodes[len(nodes) // 3]
    got = threading.Event()
    stop = threading.Event()
    stamps = []
    t = threading.Thread(target=g.events, args=(a.cluster, lambda _: (stamps.append(time.perf_counter()), got.set()), stop), daemon=True)
    t.start()
    got.wait(10)
    # A change the pages show: a role, set then removed (labels or annotations the views do
    # not read are not changes and send no event).
    role = "node-role.kubernetes.io/bench"
    latencies_event = []
    for i in range(5):
        time.sleep(1.5)  # past the previous event's coalescing interval
        got.clear()
        start = time.perf_counter()
        kubectl(a.kubeconfig, "label", "node", target, f"{role}=" if i % 2 == 0 else f"{role}-")
        if got.wait(10):
            latencies_event.append((stamps[-1] - start) * 1000)
    cordon_start = time.perf_counter()
    kubectl(a.kubeconfig, "cordon", target)
    while True:
        _, _, body = g.get(f"/c/{a.cluster}/nodes/{target}")
        if b"SchedulingDisabled" in body:
            break
        if time.perf_counter() - cordon_start > 30:
            break
        time.sleep(0.05)
    cordon_ms = (time.perf_counter() - cordon_start) * 1000
    kubectl(a.kubeconfig, "uncordon", target)
    kubectl(a.kubeconfig, "label", "node", target, f"{role}-")
    stop.set()

    # Bytes to one browser under 20 changes per second for 30 s: the event stream plus one
    # reload of the nodes page (its server function) per event. Changes are PATCHes sent
    # straight to the API server by 4 threads, paced at 20 per second.
    counted = {"sse": 0, "reloads": 0, "reload_bytes": 0}
    stop2 = threading.Event()

    def on_event(total):
        counted["sse"] = total
        counted["reloads"] += 1
        counted["reload_bytes"] += g.server_fn("list_nodes", {"cluster": a.cluster, "query[page]": "1"})

    t2 = threading.Thread(target=g.events, args=(a.cluster, on_event, stop2), daemon=True)
    t2.start()
    time.sleep(2)
    base = dict(counted)
    duration = 30
    start = time.time()
    api = Kube(a.kubeconfig)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    futures = []
    i = 0
    while time.time() - start < duration:
        node = nodes[i % len(nodes)]
        value = "" if (i // len(nodes)) % 2 == 0 else None
        futures.append(pool.submit(api.patch_labels, node, {"node-role.kubernetes.io/bench-tick": value}))
        i += 1
        time.sleep(max(0.0, start + i / 20 - time.time()))
    for f in futures:
        f.result()
    pool.shutdown()
    elapsed = time.time() - start
    time.sleep(2)
    stop2.set()
    sent = (counted["sse"] - base["sse"]) + (counted["reload_bytes"] - base["reload_bytes"])
    kbps = sent / elapsed / 1024
    changes_per_s = i / elapsed
    subprocess.run(["kubectl", "--kubeconfig", a.kubeconfig, "label", "nodes", "--all",
                    "node-role.kubernetes.io/bench-tick-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # LIST calls during a steady window.
    before = apiserver_lists(a.kubeconfig)
    time.sleep(a.steady)
    after = apiserver_lists(a.kubeconfig)
    lists = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    lists = {k: v for k, v in lists.items() if v > 0}
    rss2, hwm2 = rss_mib(a.pid), rss_mib(a.pid, "VmHWM:")

    print(f"## Grappe live views: {len(nodes)} nodes, {pod_count} pods\n")
    print("| what | p50 | p99 | bytes | vs `kubectl get nodes -o wide` (p50 {:.0f} ms) |".format(kube_p50))
    print("| --- | --- | --- | --- | --- |")
    for label, p50, p99, size in rows:
        print(f"| {label} | {p50:.1f} ms | {p99:.1f} ms | {size} | {p50 / kube_p50:.3f}x |")
    print(f"| `kubectl get nodes -o wide` | {kube_p50:.0f} ms | {pct(kube, 99):.0f} ms | | 1x |")
    print()
    print(f"- Grappe RSS: {rss:.0f} MiB after the page samples (peak {hwm:.0f} MiB); {rss2:.0f} MiB at the end (peak {hwm2:.0f} MiB)")
    if latencies_event:
        print(f"- change to event (kubectl label started → event received, kubectl's own time included): median {statistics.median(latencies_event):.0f} ms, max {max(latencies_event):.0f} ms over {len(latencies_event)}")
    print(f"- change to page (kubectl cordon → node page shows SchedulingDisabled): {cordon_ms:.0f} ms")
    print(f"- one browser under {changes_per_s:.1f} changes/s for {elapsed:.0f} s: {kbps:.1f} KB/s "
          f"({counted['reloads'] - base['reloads']} reloads of the nodes page)")
    per_hour = {k: v * 3600 / a.steady for k, v in lists.items()}
    shown = ", ".join(f"{k} {v:.0f}/h" for k, v in sorted(per_hour.items())) or "none"
    print(f"- LIST requests served by the API server in {a.steady} s of steady state (all clients): {shown}")


if __name__ == "__main__":
    main()
