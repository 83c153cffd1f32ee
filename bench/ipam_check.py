"""The IPAM check again, from the API's objects alone: the benchmark's cross-check of the leaks
Grappe reports, beside calicoctl's when one is given (the project's scripts cannot build it:
github.com/projectcalico/calico answers 403 at the Go module proxy). An allocated address is
leaked when no running pod and no node's tunnel uses it, and why (the pod its attribute names
is gone, has finished, has another address or none; a tunnel address; nothing named) is
counted as Grappe words it. Also counts the pod addresses several pods hold (an IPAM that gave
an address twice), which no leak rule shows.

Pods are read page by page: `kubectl get pods -o json` of 150,000 pods holds them all in
kubectl's memory (9.3 GB at 110,000). Standard library only.
"""

import ipaddress
import json
import os
import re
import subprocess
import time
import urllib.parse
from collections import Counter

from grappe_client import kubectl

TUNNEL_ANNOTATIONS = ("projectcalico.org/IPv4IPIPTunnelAddr", "projectcalico.org/IPv4VXLANTunnelAddr")
# A finished pod keeps its address in its status, but its network is gone (calicoctl: not in use).
FINISHED = ("Succeeded", "Failed")
PAGE = 2000


def pods(kubeconfig):
    """(namespace, name) -> the pod's address, None without one, or its phase once finished;
    and the addresses of pod networks held by more than one running pod. Read page by page
    from the API (`kubectl get --raw` with limit and continue): even as custom columns,
    kubectl held 150,000 pods in memory until the OOM killer stopped it beside the lab."""
    by_name, holders = {}, Counter()
    token = ""
    while True:
        query = urllib.parse.urlencode({"limit": PAGE, **({"continue": token} if token else {})})
        page = json.loads(kubectl(kubeconfig, "get", "--raw", f"/api/v1/pods?{query}"))
        for p in page["items"]:
            meta, spec, status = p["metadata"], p.get("spec") or {}, p.get("status") or {}
            key, ip = (meta["namespace"], meta["name"]), status.get("podIP") or None
            if status.get("phase") in FINISHED:
                by_name[key] = status["phase"]
                continue
            by_name[key] = ip
            if ip and not spec.get("hostNetwork"):
                holders[ip] += 1
        token = page["metadata"].get("continue")
        if not token:
            break
    return by_name, {ip: n for ip, n in holders.items() if n > 1}


def tunnel_addresses(kubeconfig):
    nodes = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json"))["items"]
    used = set()
    for n in nodes:
        notes = n["metadata"].get("annotations") or {}
        for key in TUNNEL_ANNOTATIONS:
            if notes.get(key):
                used.add(notes[key].split("/")[0])
    return used, len(nodes)


def reason(secondary, pod_ips):
    """Grappe's words for a leak (engine/src/ipam.rs, leak_reason), as a category."""
    ns, name, kind = secondary.get("namespace"), secondary.get("pod"), secondary.get("type") or ""
    if ns and name:
        if (ns, name) not in pod_ips:
            return "the pod it names no longer exists"
        if pod_ips[(ns, name)] in FINISHED:
            return "the pod it names has finished"
        return "the pod it names has another address" if pod_ips[(ns, name)] else "the pod it names has no address"
    if kind.endswith("TunnelAddress"):
        return "a tunnel address the node no longer has"
    return "used by no pod and no node"


def check(kubeconfig):
    """The leaks counted by reason, the shared pod addresses, the pods and nodes read."""
    pod_ips, shared = pods(kubeconfig)
    used, nodes = tunnel_addresses(kubeconfig)
    used.update(ip for ip in pod_ips.values() if ip and ip not in FINISHED)
    blocks = json.loads(kubectl(kubeconfig, "get", "ipamblocks.crd.projectcalico.org", "-o", "json"))["items"]
    leaks, allocations = Counter(), 0
    for b in blocks:
        spec = b["spec"]
        base = ipaddress.ip_network(spec["cidr"]).network_address
        attributes = spec.get("attributes") or []
        for ordinal, index in enumerate(spec.get("allocations") or []):
            if index is None:
                continue
            allocations += 1
            if str(base + ordinal) in used:
                continue
            attr = attributes[index] if 0 <= index < len(attributes) else {}
            leaks[reason(attr.get("secondary") or {}, pod_ips)] += 1
    return {
        "leaks": leaks,
        "leaked": sum(leaks.values()),
        "allocations": allocations,
        "blocks": len(blocks),
        "shared_addresses": len(shared),
        "pods_on_shared": sum(shared.values()),
        "pods": len(pod_ips),
        "nodes": nodes,
    }


def calicoctl(path, kubeconfig):
    """Runs `calicoctl ipam check` on the lab (the Kubernetes datastore): its seconds and the
    leaked addresses it found ("Found N IPs that are allocated in IPAM but not actually in
    use"). Stops the benchmark if it fails or says nothing of leaks."""
    env = dict(os.environ, DATASTORE_TYPE="kubernetes", KUBECONFIG=kubeconfig)
    start = time.perf_counter()
    done = subprocess.run([path, "ipam", "check", "--allow-version-mismatch"], env=env,
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    found = re.search(r"Found (\d+) IPs that are allocated in IPAM but not actually in use", done.stdout)
    if done.returncode not in (0, 1) or not found:
        raise SystemExit(f"calicoctl ipam check: exit {done.returncode}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return took, int(found.group(1))
