// The live cluster views against the lab: the nodes page lists what kubectl lists, a
// `kubectl cordon` shows as SchedulingDisabled without a reload, and the overview and node
// pages render with their diagnostics. Screenshots go to the output directory.
import { test, expect } from "@playwright/test";
import { hydrated, kubectl, login, shot } from "./helpers";

test("nodes page follows the cluster live; overview and node detail", async ({ page }) => {
  const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
  const node = process.env.GRAPPE_E2E_NODE ?? "rigel";
  const names = kubectl("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}").trim().split(/\s+/).sort();

  await login(page);
  await page.goto(`/c/${cluster}/overview`);
  await hydrated(page);
  await expect(page.getByTestId("live-badge")).toHaveAttribute("data-status", "live");
  await expect(page.getByTestId("nodes-card")).toContainText(String(names.length));
  await expect(page.getByTestId("cni-card")).toBeVisible();
  await shot(page, "10-overview");

  await page.goto(`/c/${cluster}/nodes?per_page=500`);
  await hydrated(page);
  await expect(page.getByTestId("live-badge")).toHaveAttribute("data-status", "live");
  const rows = page.getByTestId("nodes-table").locator("tbody tr");
  await expect(rows).toHaveCount(names.length);
  const shown = (await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-node") ?? ""))).sort();
  expect(shown).toEqual(names);
  const row = page.locator(`tr[data-node="${node}"]`);
  await expect(row.getByTestId("node-status")).not.toContainText("SchedulingDisabled");

  // A change made with kubectl appears without reload.
  await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 42));
  kubectl("cordon", node);
  try {
    await expect(row.getByTestId("node-status")).toContainText("SchedulingDisabled", { timeout: 5_000 });
    expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).toBe(42);
    await shot(page, "11-nodes-cordoned");
  } finally {
    kubectl("uncordon", node);
  }
  await expect(row.getByTestId("node-status")).not.toContainText("SchedulingDisabled", { timeout: 5_000 });

  // Filter through the form: the query goes to the URL and the table follows it.
  await page.locator('select[name="status"]').selectOption("cordoned");
  await page.getByTestId("nodes-filters").locator('button[type="submit"]').click();
  await expect(page).toHaveURL(/status=cordoned/);
  await expect(rows).toHaveCount(0);

  await page.goto(`/c/${cluster}/nodes/${node}`);
  await hydrated(page);
  await expect(page.getByTestId("node-summary")).toBeVisible();
  await expect(page.getByTestId("conditions").locator('tr[data-condition="Ready"]')).toBeVisible();
  await expect(page.getByTestId("node-pods").locator("tbody tr")).not.toHaveCount(0);
  await shot(page, "12-node");
});
