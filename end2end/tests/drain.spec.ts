// The drain click-through against the lab (with Calico applied by kubectl so the sample pods
// run): open a node that runs a demo/web pod, preview the seed's drain (every pod's verdict,
// the demo/web budget at zero), confirm with the node's name, watch the run name the blocking
// budget, let the budget allow it, see the run succeed and the node `Ready,SchedulingDisabled`
// in the nodes table, then uncordon it from the run's result. Screenshots 30 to 34.
import { test, expect, Locator } from "@playwright/test";
import { accessible, hydrated, kubectl, login, manifest, removeManifest, runEnds, shot, tabTo } from "./helpers";

const calico = (): string => manifest("calico-v3.25.1.yaml");

function budget(maxUnavailable: number): void {
  kubectl("-n", "demo", "patch", "pdb", "web", "--type=merge", "-p", JSON.stringify({ spec: { maxUnavailable } }));
}

// Once at a desktop's width with the keyboard alone (every control reached with Tab and used
// with Enter or typed into), once at a phone's (390 px) with taps: the on-call engineer paged
// away from a desk.
for (const phone of [false, true]) {
test(`drain a node from its page: preview, blocked by a budget, done, then uncordon${phone ? " (phone)" : " (keyboard only)"}`, async ({ page }) => {
  test.setTimeout(300_000);
  if (phone) {
    await page.setViewportSize({ width: 390, height: 844 });
  }
  const keyboard = !phone;
  const press = async (target: Locator): Promise<void> => {
    if (keyboard) {
      await tabTo(page, target);
      await page.keyboard.press("Enter");
    } else {
      await target.click();
    }
  };
  const type = async (target: Locator, text: string): Promise<void> => {
    if (keyboard) {
      await tabTo(page, target);
      await page.keyboard.press("ControlOrMeta+a");
      await page.keyboard.type(text);
    } else {
      await target.fill(text);
    }
  };
  const snap = (name: string) => shot(page, phone ? `${name}-phone` : name);
  const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
  let node = "";
  try {
    kubectl("apply", "--server-side", "-f", calico());
    kubectl("-n", "kube-system", "rollout", "status", "ds/calico-node", "--timeout=120s");
    kubectl("-n", "demo", "wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=120s");
    node = kubectl("-n", "demo", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].spec.nodeName}").trim();
    expect(node).not.toBe("");

    await login(page);
    await page.goto(`/c/${cluster}/nodes/${node}`);
    await hydrated(page);
    await expect(page.getByTestId("node-status")).toHaveText("Ready");
    await press(page.getByTestId("drain").locator("summary"));
    await expect(page.getByTestId("drain-force")).toBeChecked();
    await press(page.getByTestId("plan-drain"));

    // The preview: the web pod is evicted but covered by a budget at zero; kube-proxy skipped.
    const preview = page.getByTestId("drain-preview");
    await expect(preview).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId("plan-counts")).toHaveText(/^\d+ evict · \d+ skip$/);
    await expect(preview.locator('tr[data-verdict="evict"]').filter({ hasText: "demo/web-" }).first()).toContainText("PDB demo/web");
    await expect(preview.locator('tr[data-verdict="skip"]').filter({ hasText: "kube-proxy" })).toHaveCount(1);
    await expect(page.getByTestId("pdbs-at-zero").locator('[data-pdb="demo/web"]')).toBeVisible();
    await expect(page.getByTestId("plan-checks").locator('[data-level="fail"]')).toHaveCount(0);
    expect(kubectl("get", "node", node, "-o", "jsonpath={.spec.unschedulable}")).toBe("");
    await snap("30-drain-preview");

    // The cluster's name does not confirm a drain: the node's does.
    await type(page.getByTestId("confirm-cluster"), cluster);
    await press(page.getByTestId("execute"));
    await expect(page.getByTestId("drain").locator(".alert-error")).toContainText(node);
    const before = page.url();
    // Calico may still settle on the node (a fresh install): the start then refuses a plan the
    // cluster no longer matches, as it should, and a person plans again. Twice at most.
    for (let attempt = 1; ; attempt++) {
      await type(page.getByTestId("confirm-cluster"), node);
      await type(page.getByTestId("confirm-password"), process.env.GRAPPE_E2E_PASSWORD ?? "");
      await press(page.getByTestId("execute"));
      const changed = page.getByTestId("drain").locator(".alert-error", { hasText: "plan again" });
      await expect(page.getByTestId("run-summary").or(changed)).toBeVisible({ timeout: 30_000 });
      if (attempt === 2 || !(await changed.isVisible())) {
        break;
      }
      await press(page.getByTestId("plan-drain"));
      // The old plan and its refusal go while the new one is made: wait for that, not for the
      // old preview (confirming it raced the new plan, CI: the run started, the page stayed).
      await expect(changed).toBeHidden({ timeout: 30_000 });
      await expect(page.getByTestId("drain-preview")).toBeVisible({ timeout: 30_000 });
    }
    await expect(page).not.toHaveURL(before, { timeout: 30_000 });
    await expect(page).toHaveURL(/\/runs\/\d+$/);
    await hydrated(page);

    // Progress: the budget is named on the pod it blocks, live.
    await expect(page.getByTestId("run-objects")).toContainText("blocked by PodDisruptionBudget demo/web", { timeout: 60_000 });
    await expect(page.getByTestId("run-status")).toHaveText("running");
    // The step's bar counts the pods gone and names the budget that holds the rest.
    const bar = page.getByTestId("run-steps").locator(`[data-step="drain ${node}"] .step-progress`);
    await expect(bar.getByTestId("held-by")).toContainText("PodDisruptionBudget demo/web", { timeout: 30_000 });
    await accessible(page);
    await snap("31-drain-blocked");
    const runUrl = page.url();
    // Where it was started, the node's page shows the run in progress with the same bar, live:
    // the budget let go, the card goes when the run ends (a `runs` event of the page's stream).
    await page.goto(`/c/${cluster}/nodes/${node}`);
    await hydrated(page);
    const active = page.getByTestId("active-run");
    await expect(active.getByTestId("active-run-link")).toHaveAttribute("href", new URL(runUrl).pathname);
    await expect(active.getByTestId("held-by")).toContainText("PodDisruptionBudget demo/web", { timeout: 30_000 });
    await expect(active.getByTestId("active-run-steps")).toContainText("steps done");
    await snap("35-drain-blocked-on-node-page");
    budget(1);
    await expect(active).toBeHidden({ timeout: 120_000 });
    await page.goto(runUrl);
    await hydrated(page);
    await runEnds(page, "succeeded", 120_000);
    await expect(page.getByTestId("run-steps").locator(`[data-step="drain ${node}"]`)).toContainText(`node/${node} drained`);
    await expect(bar).toContainText(/(\d+) \/ \1 pods evicted and gone/);
    await expect(page.getByTestId("run-progress")).toContainText(/(\d+) \/ \1 steps done/);
    await snap("32-drain-done");

    // The nodes table says what `kubectl get nodes` says.
    await page.goto(`/c/${cluster}/nodes`);
    await hydrated(page);
    await expect(page.locator(`tr[data-node="${node}"]`).getByTestId("node-status")).toHaveText("Ready,SchedulingDisabled");
    await snap("33-nodes-scheduling-disabled");

    // Uncordon from the run's result.
    await page.goto(runUrl);
    await hydrated(page);
    await press(page.getByTestId(`uncordon-${node}`));
    await expect(page.getByTestId("cordon-result")).toBeVisible();
    expect(kubectl("get", "node", node, "-o", "jsonpath={.spec.unschedulable}")).toBe("");
    await snap("34-drain-uncordoned");
  } finally {
    budget(0);
    if (node) {
      kubectl("uncordon", node);
    }
    removeManifest(calico());
  }
});
}
