// The CNI workflow click-through against the lab: plan Calico v3.25.1 (27 objects to create),
// confirm with the cluster's name, follow the run live until calico-node is Ready on every
// node, find it in the history, then plan and run its rollback and find Calico gone.
// Screenshots go to the output directory.
import { test, expect } from "@playwright/test";
import { confirmAndExecute, hydrated, kubectl, login, manifest, removeManifest, runEnds, shot } from "./helpers";

test("install Calico from the CNI page, follow the run live, then roll it back", async ({ page }) => {
  test.setTimeout(300_000);
  const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
  const nodes = kubectl("get", "nodes", "-o", "name").trim().split(/\s+/).length;
  try {
    await login(page);
    await page.goto(`/c/${cluster}/cni`);
    await hydrated(page);
    await expect(page.getByTestId("cni-none")).toBeVisible();

    // Plan: nothing changes yet.
    await page.getByTestId("manifest-source").selectOption("calico-v3.25.1");
    await page.getByTestId("plan-install").click();
    const plan = page.getByTestId("plan");
    await expect(plan).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId("plan-counts")).toContainText("27 create");
    await expect(plan).toContainText("verified checksum");
    await expect(page.getByTestId("plan-checks").locator('[data-level="fail"]')).toHaveCount(0);
    await expect(page.getByTestId("plan-checks").locator('[data-check="pool"]')).toBeVisible();
    expect(kubectl("get", "ds", "-n", "kube-system", "-o", "name")).not.toContain("calico");
    await shot(page, "20-cni-plan");

    // A wrong cluster name is refused and nothing starts.
    await page.getByTestId("confirm-cluster").fill("not-" + cluster);
    await page.getByTestId("execute").click();
    await expect(page.getByTestId("cni-install").locator(".alert-error")).toContainText(cluster);
    await expect(page).toHaveURL(/\/cni$/);

    // Execute, then follow the run without reloading.
    const installId = await confirmAndExecute(page, cluster);
    await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 7));
    await expect(page.getByTestId("run-steps").locator('[data-step="snapshot"]')).toBeVisible();
    await expect(page.getByTestId("run-status")).toHaveText(/running|succeeded/);
    await shot(page, "21-run-progress");
    await runEnds(page, "succeeded", 240_000);
    expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).toBe(7);
    await expect(page.getByTestId("run-steps").locator('[data-step="rollout"]')).toContainText(`calico-node: ${nodes}/${nodes} Ready`);
    // The rollout's bars: nodes Ready, and pods updated (calico-node's and the controllers').
    const updated = page.getByTestId("run-steps").locator('[data-step="rollout"]').getByTestId("pods-updated");
    await expect(updated).toContainText(/(\d+) \/ \1 pods updated/);
    expect(Number(await updated.getAttribute("data-total"))).toBeGreaterThan(nodes);
    await shot(page, "22-run-succeeded");
    const ready = kubectl("get", "ds", "calico-node", "-n", "kube-system", "-o", "jsonpath={.status.numberReady}");
    expect(Number(ready)).toBe(nodes);
    const runUrl = page.url();

    // The CNI page and the history show it.
    await page.goto(`/c/${cluster}/cni`);
    await hydrated(page);
    await expect(page.getByTestId("cni-item")).toContainText("Calico");
    await expect(page.getByTestId("runs-table").locator(`tr[data-run="${installId}"]`)).toHaveAttribute("data-status", "succeeded");
    await page.goto("/history");
    await hydrated(page);
    await expect(page.getByTestId("history-runs").getByTestId("runs-table")).toContainText("cni.install");
    await shot(page, "23-history-runs");

    // Roll back: every object the install created is deleted.
    await page.goto(runUrl);
    await hydrated(page);
    await page.getByTestId("plan-rollback").click();
    await expect(page.getByTestId("rollback").getByTestId("plan-counts")).toContainText("27 delete", { timeout: 60_000 });
    await shot(page, "24-rollback-plan");
    const rollbackId = await confirmAndExecute(page, cluster);
    await expect(page.getByTestId("run-summary")).toContainText("cni.rollback");
    await expect(page.getByTestId("run-summary")).toHaveAttribute("data-run", rollbackId);
    await runEnds(page, "succeeded", 240_000);
    await shot(page, "25-rollback-done");

    // The history's timeline: the install and its rollback each on their workflow's lane, as
    // succeeded bars, counted by mark beside the lane.
    await page.goto("/history");
    await hydrated(page);
    const timeline = page.getByTestId("history-runs").getByTestId("run-timeline");
    for (const [workflow, id] of [["cni.install", installId], ["cni.rollback", rollbackId]]) {
      const lane = timeline.locator(`li[data-workflow="${workflow}"]`);
      await expect(lane.locator(`rect[data-run="${id}"]`)).toHaveAttribute("data-status", "succeeded");
      await expect(lane.getByTestId("lane-counts")).toContainText("✓");
    }
    await shot(page, "26-history-timeline");
    expect(kubectl("get", "ds", "-n", "kube-system", "-o", "name")).not.toContain("calico");
    expect(kubectl("get", "crd", "-o", "name")).not.toContain("projectcalico.org");
  } finally {
    // Leave the lab as found, whatever happened above.
    removeManifest(manifest("calico-v3.25.1.yaml"));
  }
});

test("a manifest file picked in the browser is planned as an unverified upload; a too large one is refused", async ({ page }) => {
  const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
  await login(page);
  await page.goto(`/c/${cluster}/cni`);
  await hydrated(page);

  const manifest = [
    "apiVersion: v1",
    "kind: Namespace",
    "metadata:",
    "  name: grappe-e2e-upload",
    "---",
    "apiVersion: v1",
    "kind: ConfigMap",
    "metadata:",
    "  name: my-cni-settings",
    "  namespace: grappe-e2e-upload",
    "data:",
    "  mode: vxlan",
    "",
  ].join("\n");
  await page.getByTestId("manifest-file").setInputFiles({
    name: "my-cni.yaml",
    mimeType: "application/yaml",
    buffer: Buffer.from(manifest),
  });
  await expect(page.getByTestId("manifest-text")).toHaveValue(manifest);
  await expect(page.getByTestId("manifest-source")).toHaveValue("paste");
  await page.getByTestId("plan-install").click();
  const plan = page.getByTestId("plan");
  await expect(plan).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId("plan-counts")).toHaveText("2 create");
  await expect(plan).toContainText("upload:my-cni.yaml");
  await expect(plan.locator(".badge-warn")).toBeVisible();
  // Each object of an unverified manifest can be read whole before anything is applied.
  await plan.locator("tr", { hasText: "my-cni-settings" }).getByTestId("object-yaml").click();
  await expect(plan.getByTestId("object-yaml-text")).toContainText("mode: vxlan");
  await shot(page, "26-cni-upload-plan");
  // Planning changed nothing.
  expect(kubectl("get", "namespaces", "-o", "name")).not.toContain("grappe-e2e-upload");

  // Over 5 MiB: refused in the browser, the form keeps the previous text.
  await page.getByTestId("manifest-file").setInputFiles({
    name: "huge.yaml",
    mimeType: "application/yaml",
    buffer: Buffer.alloc(5 * 1024 * 1024 + 1, "#"),
  });
  await expect(page.getByTestId("manifest-file-error")).toContainText("5 MiB");
  await expect(page.getByTestId("manifest-text")).toHaveValue(manifest);
});
