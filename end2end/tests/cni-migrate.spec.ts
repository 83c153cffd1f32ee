// The manifest -> Tigera operator migration from the CNI page, against the lab's real operator:
// Calico v3.32.1 installed from its manifest outside Grappe (kubectl, as on a cluster Grappe
// meets for the first time); pick the operator's entry and tick the migration; the plan shows
// what moves, what the operator rewrites and what stays; run it and read each node move to
// calico-system; roll it back to the manifest install. Screenshots 48 to 50.
import { test, expect } from "@playwright/test";
import { confirmAndExecute, hydrated, kubectl, login, manifest, removeManifest, removeOperator, runEnds, shot } from "./helpers";

const entry = "calico-operator-v3.32.1";

function calicoNode(namespace: string): string {
  return kubectl("get", "ds", "calico-node", "-n", namespace, "--ignore-not-found", "-o", "jsonpath={.spec.template.spec.containers[0].image}");
}

test("migrate a manifest install of Calico to the Tigera operator, node by node, and back", async ({ page }) => {
  test.setTimeout(480_000);
  const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
  const calico = manifest("calico-v3.32.1.yaml");
  try {
    kubectl("apply", "--server-side", "-f", calico);
    await login(page);
    await page.goto(`/c/${cluster}/cni`);
    await hydrated(page);
    await expect(page.getByTestId("cni-installed")).toContainText("kube-system/calico-node", { timeout: 60_000 });
    // calico-node creates the default pool once it runs: the plan hands it over.
    await expect
      .poll(() => kubectl("get", "ippools.crd.projectcalico.org", "-o", "name"), { timeout: 60_000 })
      .toContain("default-ipv4-ippool");

    await page.getByTestId("manifest-source").selectOption(entry);
    await expect(page.getByTestId("operator-options")).toHaveAttribute("open", "");
    await page.getByTestId("operator-migrate").check();
    await page.getByTestId("plan-install").click();

    const plan = page.getByTestId("plan");
    await expect(plan).toBeVisible({ timeout: 60_000 });
    await expect(plan).toContainText("migration of the manifest install");
    const checks = page.getByTestId("plan-checks");
    await expect(checks.locator('[data-level="fail"]')).toHaveCount(0);
    await expect(checks.locator('[data-check="compat-method"]')).toHaveAttribute("data-level", "pass");
    await expect(checks.locator('[data-check="migrate-leftovers"]')).toContainText("calico-config");
    const objects = page.getByTestId("plan-objects");
    await expect(objects.locator('tr[data-action="move"]', { hasText: "kube-system/calico-node" })).toHaveCount(1);
    await expect(objects.locator('tr[data-action="handover"]', { hasText: "default-ipv4-ippool" })).toHaveCount(1);
    await shot(page, "48-migrate-plan");

    await confirmAndExecute(page, cluster);
    await runEnds(page, "succeeded", 300_000);
    const steps = page.getByTestId("run-steps");
    await expect(steps.locator('[data-step="migrate nodes"]')).toContainText("moved to calico-system");
    await expect(steps.locator('[data-step="migrate nodes"]')).toContainText("kube-system/calico-node deleted by the operator");
    // The step's bar counts the nodes served by the operator's calico-node, all of them at the end.
    await expect(steps.locator('[data-step="migrate nodes"] .step-progress')).toContainText(/(\d+) \/ \1 nodes on the operator's calico-node/);
    await shot(page, "49-migrate-run");
    expect(calicoNode("kube-system")).toBe("");
    expect(calicoNode("calico-system")).toContain("v3.32.1");

    // Back to the manifest install, from the run's page.
    await page.getByTestId("plan-rollback").click();
    await expect(page.getByTestId("rollback").getByTestId("plan-counts")).toContainText("restore", { timeout: 60_000 });
    await confirmAndExecute(page, cluster);
    await runEnds(page, "succeeded", 300_000);
    await expect(page.getByTestId("run-steps").locator('[data-step="verify"]')).toContainText("equal their snapshot");
    await shot(page, "50-migrate-rollback");
    expect(calicoNode("kube-system")).toContain("v3.32.1");
    expect(kubectl("get", "ns", "calico-system", "--ignore-not-found", "-o", "name")).toBe("");
  } finally {
    // Leave the lab as found: no operator, no Calico.
    removeOperator();
    removeManifest(calico);
  }
});
