// The foundation's click-through: log in, see the shell, switch to French, see the login in the
// history, log out.
import { test, expect } from "@playwright/test";
import { credentials, hydrated, login, shot } from "./helpers";

test("log in, switch to French, find the login in the history, log out", async ({ page }) => {
  const { user } = credentials();
  const consoleErrors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));

  await page.goto("/history");
  await expect(page).toHaveURL(/\/login\?next=/);
  await shot(page, "01-login");

  await login(page);
  await page.goto("/");
  await hydrated(page);
  await expect(page.getByRole("navigation", { name: "main" })).toBeVisible();
  for (const item of ["Overview", "Nodes", "CNI", "History", "Settings"]) {
    await expect(page.getByRole("link", { name: item, exact: true })).toBeVisible();
  }
  await expect(page.getByTestId("user-menu")).toContainText(user);
  await expect(page.getByTestId("cluster-switcher")).toBeVisible();
  await shot(page, "02-shell");

  await page.getByRole("link", { name: "Settings", exact: true }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await page.getByTestId("language-select").selectOption("fr");
  await page.getByTestId("language-save").click();
  await expect(page.getByRole("link", { name: "Historique", exact: true })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "fr");
  await shot(page, "03-settings-fr");

  await page.getByRole("link", { name: "Historique", exact: true }).click();
  await expect(page).toHaveURL(/\/history/);
  const table = page.getByTestId("history-table");
  await expect(table).toBeVisible();
  const loginRow = table.locator('tr[data-action="auth.login"]').first();
  await expect(loginRow).toContainText(user);
  await expect(loginRow).toContainText("succès");
  await shot(page, "04-history-fr");

  // Filter through the form (client-side navigation keeps the filter in the URL).
  await page.locator('select[name="action"]').selectOption("auth.login");
  await page.getByRole("button", { name: "Filtrer" }).click();
  await expect(page).toHaveURL(/action=auth\.login/);
  await expect(table.locator("tbody tr")).not.toHaveCount(0);
  for (const action of await table.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-action")))) {
    expect(action).toBe("auth.login");
  }

  // A record's details read as fields, not as the recorded JSON (kept in the cell's title): the
  // test admin's creation (an early record: filtered to, as the history may hold pages by now).
  await page.goto("/history?action=user.add");
  await hydrated(page);
  const added = table.locator('tr[data-action="user.add"]').first().locator(".details");
  await expect(added.locator('[data-field="role"]')).toHaveText("role: admin");
  await expect(added).not.toContainText("{");
  await expect(added).toHaveAttribute("title", /"role":"admin"/);

  await page.getByTestId("user-menu").click();
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login\?error=loggedout/);
  await expect(page.getByTestId("login-message")).toBeVisible();
  await shot(page, "05-logged-out");

  // After logout the history is no longer reachable.
  await page.goto("/history");
  await expect(page).toHaveURL(/\/login\?next=/);

  expect(consoleErrors, consoleErrors.join("\n")).toEqual([]);
});

test("a wrong password is refused with the uniform message", async ({ page }) => {
  const { user } = credentials();
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill("definitely-not-the-password");
  await page.getByTestId("login-submit").click();
  await expect(page).toHaveURL(/error=invalid/);
  await expect(page.getByTestId("login-message")).toHaveText("Invalid username or password.");
});

test("a post-login target that a browser would turn into another site is not followed", async ({ page, baseURL }) => {
  const { user, password } = credentials();
  // A tab after the first slash: browsers drop it, and /<TAB>/evil.example is //evil.example.
  for (const next of ["/\t/evil.example", "/\n/evil.example", "//evil.example"]) {
    await page.goto(`/login?next=${encodeURIComponent(next)}`);
    await hydrated(page);
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByTestId("login-submit").click();
    await page.waitForURL((url) => !url.pathname.startsWith("/login"), { timeout: 15_000 });
    const landed = new URL(page.url());
    expect(landed.origin, `next=${JSON.stringify(next)}`).toBe(new URL(baseURL!).origin);
    expect(landed.pathname).toBe("/");
    await page.context().clearCookies();
  }
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("reading pages work: log in with the form, read the history", async ({ page }) => {
    const { user, password } = credentials();
    await page.goto("/login");
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByTestId("login-submit").click();
    await page.goto("/history?action=auth.login");
    const table = page.getByTestId("history-table");
    await expect(table).toBeVisible();
    await expect(table.locator('tr[data-action="auth.login"]').first()).toContainText(user);
    await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
    await shot(page, "06-history-no-js");
  });
});
