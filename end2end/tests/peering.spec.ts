// The network doctor's BGP and MTU pages against the lab, sharing one install of Calico
// v3.32.1 from its manifest (node-to-node mesh, IPIP, veth_mtu 0: auto-detection).
// - BGP: `lab break bgp-peer-down rigel saiph` makes both calico-node report the session down;
//   the page, live, marks it in the matrix (with a word in its title, not only a colour) and
//   lists both ends; rigel's own session table, read over SSH with birdcl, shows the session
//   with saiph not Established; `lab heal` clears it. Screenshots 54 and 56.
// - MTU: the hosts' checks give their uplinks' MTU (1500: IPIP pods fit at 1480);
//   `lab break mtu-mismatch saiph` lowers saiph's interface to 1400, and the probe from rigel
//   really finds it with ping (1400 to 1404); the pool's verdict turns "too large" and the diagnostic
//   names it; after `lab heal` the probe finds 1500 again. Screenshot 55.
// (Named to run after the specs that expect a lab without a CNI: it installs and removes Calico.)
import { test, expect } from "@playwright/test";
import { checkHost, hydrated, kubectl, lab, login, manifest, removeManifest, shot } from "./helpers";

const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";

test.describe.serial("network doctor", () => {
  test.beforeAll(() => {
    kubectl("apply", "--server-side", "-f", manifest("calico-v3.32.1.yaml"));
  });
  test.afterAll(() => {
    lab("heal");
    removeManifest(manifest("calico-v3.32.1.yaml"));
  });

  test("the BGP page marks a session down at both ends, live", async ({ page }) => {
    test.setTimeout(240_000);
    try {
      await login(page);
      await checkHost(page, cluster, "rigel"); // trusts its host key: the session table is read over SSH
      await page.goto(`/c/${cluster}/bgp`);
      await hydrated(page);
      await expect(page.getByTestId("bgp-topology")).toHaveAttribute("data-mesh", "true", { timeout: 90_000 });
      const matrix = page.getByTestId("bgp-matrix");
      await expect(matrix.locator('td[data-session="down"]')).toHaveCount(0, { timeout: 90_000 });

      lab("break", "bgp-peer-down", "rigel", "saiph");
      const down = page.getByTestId("bgp-down");
      await expect(down.locator("tbody tr")).toHaveCount(2, { timeout: 60_000 });
      await expect(down.locator('tr[data-node="rigel"]')).toContainText("saiph");
      await expect(down.locator('tr[data-node="saiph"]')).toContainText("rigel");
      await expect(matrix.locator('tr[data-node="rigel"] td[data-session="down"]')).toHaveCount(1);
      await expect(matrix.locator('td[data-session="down"]')).toHaveCount(2);
      await shot(page, "54-bgp-down");

      // rigel's own session table, read over SSH from its BIRD: the session with saiph is not
      // Established, the others are.
      await page.getByTestId("bgp-read-node").selectOption("rigel");
      await page.getByTestId("bgp-read-run").click();
      const table = page.getByTestId("bgp-sessions");
      await expect(table).toHaveAttribute("data-node", "rigel", { timeout: 30_000 });
      await expect(table.locator('tr[data-established="false"]')).toHaveCount(1);
      await expect(table.locator('tr[data-established="false"]')).toContainText("saiph");
      await expect(table.locator('tr[data-established="true"]')).toHaveCount(2);
      await shot(page, "56-bgp-sessions");

      lab("heal");
      await expect(matrix.locator('td[data-session="down"]')).toHaveCount(0, { timeout: 60_000 });
    } finally {
      lab("heal");
    }
  });

  test("the MTU page finds a smaller link with a real probe and names the drop", async ({ page }) => {
    test.setTimeout(240_000);
    try {
      await login(page);
      for (const node of ["rigel", "saiph"]) {
        await checkHost(page, cluster, node);
      }
      await page.goto(`/c/${cluster}/mtu`);
      await hydrated(page);
      const pool = page.getByTestId("mtu-pools").locator("tbody tr").first();
      await expect(pool).toHaveAttribute("data-verdict", "Fits", { timeout: 90_000 });
      await expect(pool.getByTestId("path-mtu")).toContainText("1500");
      await expect(pool.getByTestId("pod-mtu")).toContainText("1480");
      await expect(page.getByTestId("mtu-hosts").locator('tr[data-node="saiph"]')).toContainText("eth0 1500");

      lab("break", "mtu-mismatch", "saiph");
      await page.getByTestId("probe-from").selectOption("rigel");
      await page.getByTestId("probe-to").selectOption("saiph");
      await page.getByTestId("probe-run").click();
      const probe = page.getByTestId("mtu-probes").locator('tr[data-from="rigel"][data-to="saiph"]');
      // 1400, or up to 4 bytes more: a veth lets a VLAN header's worth through beyond its MTU.
      await expect(probe.getByTestId("probe-largest")).toContainText(/\b140[0-4]\b/, { timeout: 60_000 });
      await expect(pool).toHaveAttribute("data-verdict", "TooLarge", { timeout: 30_000 });
      await expect(pool.getByTestId("path-mtu")).toContainText("probe rigel -> saiph");
      await shot(page, "55-mtu-too-large");
      await page.goto(`/c/${cluster}/overview`);
      await expect(page.locator('[data-rule="calico.mtu-too-large"]')).toBeVisible({ timeout: 30_000 });

      lab("heal");
      await page.goto(`/c/${cluster}/mtu`);
      await hydrated(page);
      await page.getByTestId("probe-from").selectOption("rigel");
      await page.getByTestId("probe-to").selectOption("saiph");
      await page.getByTestId("probe-run").click();
      await expect(probe.getByTestId("probe-largest")).toContainText("1500", { timeout: 60_000 });
      await expect(pool).toHaveAttribute("data-verdict", "Fits", { timeout: 30_000 });
    } finally {
      lab("heal");
    }
  });
});
