import { expect, Page } from "@playwright/test";

export const output = process.env.GRAPPE_E2E_OUTPUT ?? "../test-output/e2e";

export function credentials(): { user: string; password: string } {
  const user = process.env.GRAPPE_E2E_USER;
  const password = process.env.GRAPPE_E2E_PASSWORD;
  if (!user || !password) {
    throw new Error("GRAPPE_E2E_USER and GRAPPE_E2E_PASSWORD must be set (scripts/e2e sets them)");
  }
  return { user, password };
}

/** Waits until the wasm has hydrated the page: clicks before that do nothing. */
export async function hydrated(page: Page): Promise<void> {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true", { timeout: 30_000 });
}

export async function login(page: Page): Promise<void> {
  const { user, password } = credentials();
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel(/Username|Nom d'utilisateur/).fill(user);
  await page.getByLabel(/Password|Mot de passe/).fill(password);
  await page.getByTestId("login-submit").click();
  await expect(page).toHaveURL(/\/$|\/history|\/c\//);
  await hydrated(page);
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${output}/${name}.png`, fullPage: true });
}

/** Checks a node's host from its page, trusting its key first when it is not trusted yet
 * (`beforeTrust`: what to do while the untrusted key is shown, e.g. a screenshot). */
export async function checkHost(page: Page, cluster: string, node: string, beforeTrust?: () => Promise<void>): Promise<void> {
  await page.goto(`/c/${cluster}/nodes/${node}`);
  await hydrated(page);
  const host = page.getByTestId("host");
  await host.getByTestId("check-host").click();
  const untrusted = host.getByTestId("untrusted-key");
  const done = host.getByTestId("host-check").first();
  await expect(untrusted.or(done)).toBeVisible({ timeout: 30_000 });
  if (await untrusted.isVisible()) {
    await expect(host.getByTestId("presented-fingerprint")).toContainText("SHA256:");
    if (beforeTrust) {
      await beforeTrust();
    }
    await host.getByTestId("trust-key").click();
    await expect(host.getByTestId("trusted")).toContainText("SHA256:", { timeout: 30_000 });
    await host.getByTestId("check-host").click();
  }
  await expect(host.getByTestId("host-key")).toContainText("SHA256:", { timeout: 30_000 });
  await expect(host.getByTestId("kubelet-state").first()).toBeVisible({ timeout: 30_000 });
}
