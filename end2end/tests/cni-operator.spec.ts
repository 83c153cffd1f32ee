// The Tigera operator from the CNI page against the lab (which runs the real operator while its
// pod runs): pick "Calico v3.32.1 with the Tigera operator", its options open; set the block
// size, the encapsulation and the MTU; the plan shows them and passes the compatibility gate;
// run it until the operator reports calico Available; the overview shows the TigeraStatus and
// the Installation's settings; roll it back and find calico-system gone. Screenshots 26 to 29.
import { test, expect } from "@playwright/test";
import { confirmAndExecute, hydrated, kubectl, login, removeOperator, runEnds, shot } from "./helpers";

const entry = "calico-operator-v3.32.1";

test("install Calico with the Tigera operator and its options, see TigeraStatus, roll it back", async ({ page }) => {
  test.setTimeout(420_000);
  const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
  try {
    await login(page);
    await page.goto(`/c/${cluster}/cni`);
    await hydrated(page);
    await expect(page.getByTestId("cni-none")).toBeVisible();

    // The operator's options open when its entry is picked.
    const options = page.getByTestId("operator-options");
    await expect(options).not.toHaveAttribute("open", "");
    await page.getByTestId("manifest-source").selectOption(entry);
    await expect(options).toHaveAttribute("open", "");
    await page.getByTestId("block-size").fill("27");
    await page.getByTestId("encapsulation").selectOption("VXLAN");
    await page.getByTestId("mtu").fill("1440");
    await page.getByTestId("plan-install").click();

    const plan = page.getByTestId("plan");
    await expect(plan).toBeVisible({ timeout: 60_000 });
    await expect(plan).toContainText("encapsulation=VXLAN");
    await expect(plan).toContainText("blockSize=27");
    await expect(plan).toContainText("mtu=1440");
    const checks = page.getByTestId("plan-checks");
    await expect(checks.locator('[data-level="fail"]')).toHaveCount(0);
    await expect(checks.locator('[data-check="compat-eol"]')).toHaveAttribute("data-level", "pass");
    await expect(checks.locator('[data-check="compat-kubernetes"]')).toHaveAttribute("data-level", "pass");
    await shot(page, "26-operator-plan");

    // Run it: the rollout waits for the operator's report.
    await confirmAndExecute(page, cluster);
    await runEnds(page, "succeeded", 300_000);
    await expect(page.getByTestId("run-steps").locator('[data-step="rollout"]')).toContainText("TigeraStatus calico: Available");
    await shot(page, "27-operator-run");
    const runUrl = page.url();
    expect(kubectl("get", "ds", "calico-node", "-n", "calico-system", "-o", "jsonpath={.spec.template.spec.containers[0].image}")).toContain("v3.32.1");

    // The overview: installed by the operator, its components, the Installation's MTU.
    await page.goto(`/c/${cluster}/overview`);
    await hydrated(page);
    await expect(page.getByTestId("calico-method")).toContainText("Tigera", { timeout: 30_000 });
    await expect(page.getByTestId("tigera-status").locator('tr[data-component="calico"]')).toHaveAttribute("data-state", "Available");
    await expect(page.getByTestId("calico-version")).toContainText("v3.32.1");
    await expect(page.locator("body")).toContainText("MTU 1440");
    // One CNI: the operator's csi-node-driver (calico/node-driver-registrar) is not another.
    await expect(page.getByTestId("findings")).not.toContainText("cni.several");
    await shot(page, "28-operator-overview");

    // Roll back: the Installation first (the operator removes calico-system), its CRDs last.
    await page.goto(runUrl);
    await hydrated(page);
    await page.getByTestId("plan-rollback").click();
    await expect(page.getByTestId("rollback").getByTestId("plan-counts")).toContainText("delete", { timeout: 60_000 });
    await confirmAndExecute(page, cluster);
    await runEnds(page, "succeeded", 300_000);
    await shot(page, "29-operator-rollback");
    expect(kubectl("get", "ns", "calico-system", "--ignore-not-found", "-o", "name")).toBe("");
    expect(kubectl("get", "crd", "-o", "name")).not.toContain("tigera.io");
  } finally {
    // Leave the lab as found, whatever happened above.
    removeOperator();
  }
});
