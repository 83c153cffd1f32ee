// Readable by everyone, everywhere: axe-core (WCAG 2.1 A and AA) on every page of a cluster and
// the shell's, in the light and the dark theme, with no serious or critical violation; the
// pages at a phone's width (390 px) without a horizontal scroll of the page itself; `<html lang>`
// as the reader's language from the first byte the server sends. Screenshots 60 to 63.
import { test, expect, Page } from "@playwright/test";
import { hydrated, login, shot, violations } from "./helpers";

const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";

async function firstNode(page: Page): Promise<string> {
  await page.goto(`/c/${cluster}/nodes`);
  await hydrated(page);
  const name = await page.getByTestId("nodes-table").locator("tbody tr").first().getAttribute("data-node");
  if (!name) {
    throw new Error("the nodes page lists no node");
  }
  return name;
}

function pages(node: string): string[] {
  return [
    "/",
    `/c/${cluster}/overview`,
    `/c/${cluster}/nodes`,
    `/c/${cluster}/nodes/${node}`,
    `/c/${cluster}/cni`,
    `/c/${cluster}/ipam`,
    `/c/${cluster}/bgp`,
    `/c/${cluster}/mtu`,
    "/history",
    "/settings",
  ];
}

test("every page passes axe, light and dark", async ({ page }) => {
  test.setTimeout(240_000);
  const found: string[] = [];
  for (const scheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto("/login");
    await hydrated(page);
    found.push(...(await violations(page)).map((v) => `${scheme} ${v}`));
  }
  await login(page);
  const node = await firstNode(page);
  for (const scheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const path of pages(node)) {
      await page.goto(path);
      await hydrated(page);
      found.push(...(await violations(page)).map((v) => `${scheme} ${v}`));
    }
  }
  expect(found).toEqual([]);
  await page.goto(`/c/${cluster}/overview`);
  await hydrated(page);
  await shot(page, "61-overview-dark");
});

test("every page fits a phone's width", async ({ page }) => {
  test.setTimeout(240_000);
  await page.setViewportSize({ width: 390, height: 844 });
  await login(page);
  const node = await firstNode(page);
  const wide: string[] = [];
  for (const path of pages(node)) {
    await page.goto(path);
    await hydrated(page);
    // The page itself does not scroll sideways (wide tables scroll inside their own box).
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    if (width > 392) {
      const culprits = await page.evaluate(() =>
        Array.from(document.querySelectorAll("body *"))
          .filter((e) => e.getBoundingClientRect().right > 392 && !e.closest(".table"))
          .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= 392)
          .slice(0, 3)
          .map((e) => `${e.tagName.toLowerCase()}.${e.className} in ${e.parentElement?.tagName.toLowerCase()}.${e.parentElement?.className}`),
      );
      wide.push(`${path}: ${width} px (${culprits.join(", ")})`);
    }
  }
  expect(wide).toEqual([]);
  await page.goto(`/c/${cluster}/overview`);
  await hydrated(page);
  await shot(page, "62-overview-phone");
  await page.goto(`/c/${cluster}/nodes`);
  await hydrated(page);
  await shot(page, "63-nodes-phone");
});

test("times read relative, exact on hover, and the page speaks the reader's language", async ({ page }) => {
  await login(page);
  await page.goto("/history");
  await hydrated(page);
  const first = page.locator("time.when").first();
  await expect(first).toHaveText(/ago|just now/);
  await expect(first).toHaveAttribute("title", /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (UTC|[+-]\d\d:\d\d)$/);
  await expect(first).toHaveAttribute("datetime", /Z$/);
  await shot(page, "60-history-times");
  // The server's own HTML, before any script: lang follows the reader's setting.
  const html = await (await page.request.get("/history")).text();
  expect(html).toMatch(/<html[^>]* lang="en"/);

  // The reader's time zone, a setting: a name that is not one is refused and changes nothing;
  // Asia/Tokyo shows exact times at +09:00 (this browser's own zone is UTC); empty goes back
  // to the browser's.
  // (A zone taken reloads the page, so that every time on it follows.)
  const setZone = async (zone: string, taken = true) => {
    await page.goto("/settings");
    await hydrated(page);
    await page.getByTestId("time-zone").fill(zone);
    const reloaded = taken ? page.waitForEvent("load") : undefined;
    await page.getByTestId("time-zone-save").click();
    await reloaded;
  };
  try {
    await setZone("../etc/passwd", false);
    await expect(page.getByTestId("time-zone-form").locator("..").locator(".alert-error")).toContainText("time zone");
    await setZone("Asia/Tokyo");
    await page.goto("/history");
    await hydrated(page);
    await expect(page.locator("time.when").first()).toHaveAttribute("title", /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+09:00$/);
    await shot(page, "64-history-times-tokyo");
  } finally {
    await setZone("");
  }
  await page.goto("/history");
  await hydrated(page);
  await expect(page.locator("time.when").first()).toHaveAttribute("title", /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (UTC|[+-]\d\d:\d\d)$/);
  await expect(page.locator("time.when").first()).not.toHaveAttribute("title", /\+09:00$/);
});
