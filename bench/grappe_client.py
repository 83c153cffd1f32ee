"""A client for Grappe's HTTP interface as a browser uses it (login form, server functions,
pages, the event stream), for the benchmarks. Standard library only."""

import argparse
import http.client
import json
import subprocess
import time
import urllib.parse


def kubectl(kubeconfig, *args, check=True):
    """Runs the machine's kubectl on the lab; stops the benchmark with its stderr on failure."""
    done = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True,
                          text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return done.stdout


def pct(values, p):
    """The p-th percentile of values (nearest rank)."""
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def lab_bench_args():
    """The arguments bench/with-lab.sh passes to every large-lab benchmark."""
    ap = argparse.ArgumentParser()
    for name in ("--url", "--user", "--password", "--cluster", "--kubeconfig"):
        ap.add_argument(name, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--samples", type=int, default=100)
    return ap


def rss_mib(pid, field="VmRSS:"):
    """A process's memory from /proc (VmRSS: now, VmHWM: its peak), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


class Grappe:
    def __init__(self, url, user, password):
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port or 80
        body = urllib.parse.urlencode({"username": user, "password": password, "next": "/"})
        conn = http.client.HTTPConnection(self.host, self.port)
        conn.request("POST", "/auth/login", body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.url,
        })
        res = conn.getresponse()
        res.read()
        # Every cookie the login sets (the session and the login-throttle device cookie), each
        # as name=value.
        cookies = [c.split(";")[0] for c in res.msg.get_all("Set-Cookie") or []]
        if res.status != 303 or not any(c.startswith("grappe_session=") for c in cookies):
            raise SystemExit(f"login failed: HTTP {res.status}")
        self.cookie = "; ".join(cookies)

    def get(self, path):
        """Returns (seconds, status, body bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port)
        start = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": self.cookie})
        res = conn.getresponse()
        body = res.read()
        elapsed = time.perf_counter() - start
        conn.close()
        return elapsed, res.status, body

    def server_fn(self, name, form):
        """Calls a server function as the hydrated page does; returns the response size."""
        return len(self.call_raw(name, form))

    def call(self, name, form):
        """Calls a server function; returns its JSON answer."""
        return json.loads(self.call_raw(name, form))

    def call_raw(self, name, form):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        conn.request("POST", f"/api/{name}", urllib.parse.urlencode(form), {
            "Cookie": self.cookie,
            "Origin": self.url,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        })
        res = conn.getresponse()
        body = res.read()
        conn.close()
        if res.status != 200:
            raise SystemExit(f"server function {name}: HTTP {res.status}: {body[:300]!r}")
        return body

    def start(self, plan, password):
        """Starts the run of a plan as its page's confirmation does (start_run: the plan's
        workflow, request and hash, its confirmation word, the password for an old login);
        returns the run's id."""
        return self.call("start_run", {
            "workflow": plan["workflow"], "cluster": plan["cluster"], "request": plan["request"],
            "plan_hash": plan["hash"], "confirm": plan["confirm_word"], "password": password,
        })

    def wait_run(self, run, poll=0.1):
        """Polls a run until it is no longer running; returns its view."""
        while True:
            view = self.call("get_run", {"run": str(run)})
            if view["summary"]["status"] != "running":
                return view
            time.sleep(poll)

    def events(self, cluster, on_event, stop):
        """Reads the event stream, calling on_event(bytes_so_far) at each event, until stop."""
        conn = http.client.HTTPConnection(self.host, self.port)
        conn.request("GET", f"/live/{cluster}", headers={"Cookie": self.cookie})
        res = conn.getresponse()
        total = 0
        buffer = b""
        while not stop.is_set():
            chunk = res.fp.readline()
            if not chunk:
                break
            total += len(chunk)
            buffer += chunk
            if chunk == b"\n" and b"event: changed" in buffer:
                on_event(total)
                buffer = b""
        conn.close()
