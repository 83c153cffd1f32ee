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
