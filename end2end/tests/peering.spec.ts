// The BGP page against the lab: Calico v3.32.1 from its manifest peers in the node-to-node
// mesh; `lab break bgp-peer-down rigel saiph` makes both calico-node report the session down,
// and the page, live, marks it in the matrix (with a word in its title, not only a colour) and
// lists both ends; `lab heal` clears it. Screenshot 54. (Named to run after the specs that
// expect a lab without a CNI: it installs and removes Calico.)
import { test, expect } from "@playwright/test";
import { hydrated, kubectl, lab, login, manifest, shot } from "./helpers";

test("the BGP page marks a session down at both ends, live", async ({ page }) => {
  test.setTimeout(240_000);
  const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
  try {
    kubectl("apply", "--server-side", "-f", manifest("calico-v3.32.1.yaml"));
    await login(page);
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

    lab("heal");
    await expect(matrix.locator('td[data-session="down"]')).toHaveCount(0, { timeout: 60_000 });
  } finally {
    lab("heal");
    kubectl("delete", "--ignore-not-found", "--wait=true", "-f", manifest("calico-v3.32.1.yaml"));
  }
});
