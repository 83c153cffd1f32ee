// The node hosts over SSH against the lab's hosts (lab up --hosts on: a real sshd per node in
// its own network namespace). A host key is refused until an admin trusts it; the host check
// after a Calico install shows the conflist and calico in the kubelet's journal; a lost
// kube-apiserver (lab break apiserver after the install) is recovered from the overview's
// banner in three clicks, one run that restarts it over SSH and then rolls the install back
// (clicks and wall times printed); a worker is reset from its page and the run ends "completed with warnings".
// Screenshots 40 to 47 (the recovery's at a phone's width).
import { test, expect, Page } from "@playwright/test";
import { checkHost as checkHostOf, hydrated, kubectl, lab, login, manifest, removeManifest, runEnds, shot } from "./helpers";

const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";

/** Checks a node's host, trusting its key first (with a screenshot of the untrusted key). */
async function checkHost(page: Page, node: string, screenshot?: string): Promise<void> {
  await checkHostOf(page, cluster, node, screenshot ? () => shot(page, screenshot) : undefined);
}

/** Confirms the plan shown with `word` and the password; returns the started run's page URL. */
async function execute(page: Page, word: string): Promise<string> {
  const before = page.url();
  await page.getByTestId("confirm-cluster").fill(word);
  await page.getByTestId("confirm-password").fill(process.env.GRAPPE_E2E_PASSWORD ?? "");
  await page.getByTestId("execute").click();
  await expect(page).not.toHaveURL(before, { timeout: 30_000 });
  await expect(page).toHaveURL(/\/runs\/\d+(#.*)?$/);
  await hydrated(page);
  return page.url();
}

test("check hosts, recover a lost kube-apiserver over SSH, then roll back the install", async ({ page }) => {
  test.setTimeout(420_000);
  try {
    await login(page);
    // The control plane's key, trusted before anything breaks (as an admin would on day one).
    await checkHost(page, "betelgeuse", "40-host-key-untrusted");

    // Install Calico from the CNI page.
    await page.goto(`/c/${cluster}/cni`);
    await hydrated(page);
    await page.getByTestId("manifest-source").selectOption("calico-v3.25.1");
    await page.getByTestId("plan-install").click();
    await expect(page.getByTestId("plan-counts")).toContainText("27 create", { timeout: 60_000 });
    const installUrl = await execute(page, cluster);
    await runEnds(page, "succeeded", 240_000);

    // The seed's check after an install: the conflist on the host, calico in the journal.
    await checkHost(page, "rigel");
    const check = page.getByTestId("host").getByTestId("host-check").first();
    await expect(check.getByTestId("dir--etc-cni-net.d")).toContainText("10-calico.conflist", { timeout: 30_000 });
    await expect(check.getByTestId("calico-journal")).toHaveText(/calico in the kubelet/);
    await expect(check.getByTestId("kubelet-state")).toContainText("active (running)");
    await expect(check.getByTestId("iptables")).toContainText("nat");
    await shot(page, "41-host-check");

    // The API server dies (the seed's lost static pod). The on-call engineer recovers it from
    // a phone (390 px): the desktop's flow is the same page, the drain spec runs both widths.
    await page.setViewportSize({ width: 390, height: 844 });
    lab("break", "apiserver");
    await page.goto(`/c/${cluster}/overview`);
    await hydrated(page);
    await expect(page.getByTestId("stale-banner")).toBeVisible({ timeout: 60_000 });
    // Every watch fails alike in an outage: each cause is told once, with what it stops.
    const causes = await page.getByTestId("watch-errors").locator("li")
      .evaluateAll((lis) => lis.map((li) => (li.textContent ?? "").replace(/^[^:]*: /, "")));
    expect(new Set(causes).size).toBe(causes.length);
    // From the banner: its link, the preview, execute (typing is not a click). The install's
    // rollback is offered, ticked, and runs in the same run once the API server answers.
    const started = Date.now();
    let clicks = 0;
    await shot(page, "42-recovery-banner-phone");
    await page.getByTestId("go-recover").click();
    clicks++;
    await page.getByTestId("plan-recovery").click();
    clicks++;
    await expect(page.getByTestId("recovery-hosts")).toContainText("betelgeuse", { timeout: 60_000 });
    await expect(page.getByTestId("plan-checks").locator('[data-level="fail"]')).toHaveCount(0);
    const offer = page.getByTestId("recovery-rollback");
    await expect(offer).toContainText(installUrl.match(/\/runs\/(\d+)/)![1]);
    await expect(offer.locator("input")).toBeChecked();
    await expect(page.getByTestId("plan-counts")).toContainText("27 delete");
    await shot(page, "42-recovery-plan-phone");
    await execute(page, cluster);
    clicks++;
    await expect(page.locator('[data-step="wait for /readyz"]')).toHaveAttribute("data-status", "done", { timeout: 240_000 });
    const recovered = (Date.now() - started) / 1000;
    await runEnds(page, "succeeded", 240_000);
    const total = (Date.now() - started) / 1000;
    await expect(page.getByTestId("run-steps")).toContainText("/readyz: ok");
    await expect(page.getByTestId("run-steps")).toContainText("equal their snapshot");
    await expect(page.getByTestId("offer-rollback")).toHaveCount(0);
    expect(kubectl("get", "--raw", "/readyz").trim()).toBe("ok");
    await shot(page, "43-recovery-with-rollback-done-phone");
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(wide, "the recovery's run page scrolls sideways on a phone").toBeLessThanOrEqual(392);
    expect(clicks).toBe(3);
    expect(kubectl("get", "ds", "-n", "kube-system", "-o", "name")).not.toContain("calico");
    expect(kubectl("get", "crd", "-o", "name")).not.toContain("projectcalico.org");
    console.log(`recovery: ${clicks} clicks from the overview's banner; API server back after ${recovered.toFixed(1)} s, install rolled back after ${total.toFixed(1)} s (one run)`);
  } finally {
    // Leave the lab as found, whatever happened above.
    try {
      lab("heal");
    } catch {
      // the API server may already run
    }
    removeManifest(manifest("calico-v3.25.1.yaml"));
  }
});

test("reset a worker from its page: preview, confirmation, completed with warnings", async ({ page }) => {
  test.setTimeout(300_000);
  const node = "saiph";
  // The budgets would hold the drain that comes first: without a CNI (rolled back above) the
  // evicted pods' replacements cannot become Ready.
  const budget = (ns: string, name: string, maxUnavailable: number | string) =>
    kubectl("-n", ns, "patch", "pdb", name, "--type=merge", "-p", JSON.stringify({ spec: { maxUnavailable } }));
  budget("demo", "web", "100%");
  budget("kube-system", "coredns", "100%");
  try {
    await login(page);
    await checkHost(page, node);
    await page.getByTestId("reset").locator("summary").click();
    await page.getByTestId("reset-kubeconfig").check();
    await page.getByTestId("plan-reset").click();
    await expect(page.getByTestId("reset-preview")).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId("reset-drain-first")).toHaveText("yes");
    await expect(page.getByTestId("plan-checks").locator('[data-level="fail"]')).toHaveCount(0);
    await shot(page, "45-reset-preview");

    // The cluster's name does not confirm a reset: the node's does.
    await page.getByTestId("confirm-cluster").fill(cluster);
    await page.getByTestId("confirm-password").fill(process.env.GRAPPE_E2E_PASSWORD ?? "");
    await page.getByTestId("execute").click();
    await expect(page.getByTestId("reset").locator(".alert-error")).toContainText(node, { timeout: 30_000 });
    await execute(page, node);
    await runEnds(page, "completed with warnings", 240_000);
    await expect(page.getByTestId("run-warnings")).toContainText("does not clean CNI configuration");
    await expect(page.getByTestId("run-steps").locator('[data-step="kubeadm reset -f"]')).toContainText("[reset] Deleting contents of directories");
    await shot(page, "46-reset-done");

    // On the host: kubeadm's files and the CNI configuration gone, iptables empty.
    const left = lab("ssh", node, "--", "ls -A /etc/kubernetes; ls /etc/cni 2>&1; iptables -t nat -S | grep -c -e '^-A' -e '^-N' || true");
    expect(left).not.toContain("kubelet.conf");
    expect(left).not.toContain("net.d");
    expect(left.trim().split("\n").pop()).toBe("0");
    // The node goes NotReady (its kubelet stopped) and stays cordoned.
    await page.goto(`/c/${cluster}/nodes`);
    await hydrated(page);
    await expect(page.locator(`tr[data-node="${node}"]`).getByTestId("node-status")).toHaveText(/^(NotReady|Unknown),SchedulingDisabled$/, { timeout: 120_000 });
    await shot(page, "47-reset-nodes");
  } finally {
    budget("demo", "web", 0);
    budget("kube-system", "coredns", 1);
  }
});
