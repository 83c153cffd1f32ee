import { expect, Locator, Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import * as path from "node:path";

export const output = process.env.GRAPPE_E2E_OUTPUT ?? "../test-output/e2e";

export function credentials(): { user: string; password: string } {
  const user = process.env.GRAPPE_E2E_USER;
  const password = process.env.GRAPPE_E2E_PASSWORD;
  if (!user || !password) {
    throw new Error("GRAPPE_E2E_USER and GRAPPE_E2E_PASSWORD must be set (scripts/e2e sets them)");
  }
  return { user, password };
}

/** The lab's kubeconfig (scripts/e2e --kubeconfig exports it). */
export function kubeconfig(): string {
  const k = process.env.GRAPPE_E2E_KUBECONFIG;
  if (!k) {
    throw new Error("GRAPPE_E2E_KUBECONFIG must name the lab's kubeconfig (scripts/e2e --kubeconfig sets it)");
  }
  return k;
}

/** The machine's kubectl against the lab; throws with its stderr when it fails. */
export function kubectl(...args: string[]): string {
  return execFileSync("kubectl", ["--kubeconfig", kubeconfig(), ...args], { encoding: "utf8" });
}

/** Confirms the plan on the page and returns the id of the run it started, once its page shows it. */
export async function confirmAndExecute(page: Page, cluster: string): Promise<string> {
  const before = page.url();
  await page.getByTestId("confirm-cluster").fill(cluster);
  await page.getByTestId("confirm-password").fill(process.env.GRAPPE_E2E_PASSWORD ?? "");
  await page.getByTestId("execute").click();
  await expect(page).not.toHaveURL(before, { timeout: 30_000 });
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  const id = page.url().split("/").pop() ?? "";
  await hydrated(page);
  await expect(page.getByTestId("run-summary")).toHaveAttribute("data-run", id, { timeout: 30_000 });
  return id;
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

/** The lab's own command (`lab break`, `lab heal`) on the lab Grappe watches: its directory
 * holds the kubeconfig. */
export function lab(...args: string[]): string {
  const bin = path.resolve(__dirname, "../../lab/lab");
  // `--dir` right after the command: what follows `--` (lab ssh NODE -- CMD) is the command's.
  const [command, ...rest] = args;
  return execFileSync(bin, [command, "--dir", path.dirname(kubeconfig()), ...rest], { encoding: "utf8" });
}

/** A file of the shared manifests (scripts/e2e exports their directory). */
export function manifest(file: string): string {
  const dir = process.env.GRAPPE_MANIFESTS;
  if (!dir) {
    throw new Error("GRAPPE_MANIFESTS must name the shared manifests (scripts/e2e sets it)");
  }
  return `${dir}/${file}`;
}

/** Deletes what `file` created and waits until it is gone: its CRDs and the calico-node pods
 * of its DaemonSet included, so that the next spec starts from a lab without Calico (not one
 * whose old calico-node pods still run while the new CRDs come up).
 *
 * The kube-apiserver removes a deleted CRD once its finalizer has deleted the CRD's objects; a
 * CRD deleted while its storage is (re)initializing fails that step ("storage is
 * (re)initializing" in its log) and is retried with a growing backoff: one CRD of Calico's
 * took 3.5 minutes here. A change to the CRD requeues it at once, so a CRD still there is
 * annotated every 10 s. */
export function removeManifest(file: string): void {
  kubectl("delete", "--ignore-not-found", "--wait=false", "-f", file);
  const deadline = Date.now() + 240_000;
  for (let round = 0; ; round++) {
    const left = kubectl("get", "--ignore-not-found", "-o", "name", "-f", file).trim();
    const pods = kubectl("get", "pods", "-A", "-l", "k8s-app=calico-node", "-o", "name").trim();
    if (left === "" && pods === "") {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`240 s after deleting ${file}, still there: ${left} ${pods}`);
    }
    const crds = left.split("\n").filter((n) => n.startsWith("customresourcedefinition"));
    if (crds.length > 0 && round % 10 === 9) {
      try {
        kubectl("annotate", "--overwrite", ...crds, `e2e.grappe.dev/requeue=${round}`);
      } catch {
        // one went meanwhile: the next round reads what is left
      }
    }
    execFileSync("sleep", ["1"]);
  }
}

/** Removes the Tigera operator and what it installed, if it is there: the Installation first,
 * while the operator still runs to remove calico-system. */
export function removeOperator(): void {
  if (!kubectl("get", "crd", "-o", "name").includes("installations.operator.tigera.io")) {
    return;
  }
  kubectl("delete", "installation", "--all", "--ignore-not-found", "--wait=true", "--timeout=120s");
  for (const file of ["tigera-operator.yaml", "operator-crds.yaml"]) {
    removeManifest(manifest(`calico-operator-v3.32.1/${file}`));
  }
}

/** axe-core on the page as it is now (WCAG 2 A and AA rules): fails on any serious or critical
 * violation, naming each rule, its impact and the first elements it found. */
export async function accessible(page: Page): Promise<void> {
  expect(await violations(page), `axe on ${page.url()}`).toEqual([]);
}

/** The serious and critical axe-core violations on the page as it is now, in words. */
export async function violations(page: Page): Promise<string[]> {
  const { default: AxeBuilder } = await import("@axe-core/playwright");
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const path = new URL(page.url()).pathname;
  return bad.map((v) => `${path}: ${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("\n  ")}`);
}

/** Waits until the run shown on the page ends, then expects it to have ended `status`
 * ("succeeded", "completed with warnings"). A run that ends otherwise fails the test at once,
 * with its steps' text (which step failed and why) instead of a bare status after the timeout. */
export async function runEnds(page: Page, status: string, timeout: number): Promise<void> {
  const shown = page.getByTestId("run-status");
  await expect(shown).not.toHaveAttribute("data-shown", /^(running|interrupted)$/, { timeout });
  const ended = await shown.getAttribute("data-shown");
  if (ended !== status) {
    const error = page.getByTestId("run-error");
    const why = (await error.count()) > 0 ? await error.innerText() : "";
    const steps = await page.getByTestId("run-steps").innerText();
    throw new Error(`the run ended ${ended}, not ${status}: ${why}\nits steps:\n${steps}`);
  }
}

/** Moves the focus to `target` with the Tab key alone, as a keyboard-only reader does (at most
 * `max` presses from where the focus is): fails when the keyboard cannot reach it. */
export async function tabTo(page: Page, target: Locator, max = 120): Promise<void> {
  await expect(target).toBeVisible();
  for (let i = 0; i < max; i++) {
    if (await target.evaluate((el) => el === document.activeElement)) {
      return;
    }
    await page.keyboard.press("Tab");
  }
  throw new Error(`${target} not reached with ${max} presses of Tab`);
}
