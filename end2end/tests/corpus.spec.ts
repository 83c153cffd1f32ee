// Hostile text from a cluster and from a node's host, through every page that shows it, in
// Chromium: HTML, attribute breakers, a `javascript:` link and a Unicode direction override put
// in a node's annotation (shown as its Calico address on the nodes table and the node page), a
// Warning event's message and reason (the node page), and a file name and a CNI configuration
// file on the node's host (the host check). No script runs, no element is injected, the text
// shows as text and the override shows as its code.
import { test, expect, Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { checkHost, hydrated, login, shot } from "./helpers";

function kubeconfig(): string {
  const k = process.env.GRAPPE_E2E_KUBECONFIG;
  if (!k) {
    throw new Error("GRAPPE_E2E_KUBECONFIG must name the lab's kubeconfig (scripts/e2e --kubeconfig sets it)");
  }
  return k;
}

function kubectl(args: string[], input?: string): string {
  return execFileSync("kubectl", ["--kubeconfig", kubeconfig(), ...args], { encoding: "utf8", input });
}

/** A command on a node's host (one argument: ssh joins its arguments into a shell line). */
function onHost(node: string, script: string): string {
  return execFileSync("../lab/lab", ["ssh", "--dir", path.dirname(kubeconfig()), node, "--", script], {
    encoding: "utf8",
  });
}

const cluster = process.env.GRAPPE_E2E_CLUSTER ?? "lab";
const node = "bellatrix";

// Each sets window.__pwned if it ever runs.
const SCRIPT = "<script>window.__pwned=1</script>";
const ATTRIBUTE = `"><img src=x onerror="window.__pwned=2">`;
const SVG = "'><svg onload=window.__pwned=3>";
const LINK = "javascript:window.__pwned=4";
const BIDI = "\u202Eevil";
const CORPUS = [SCRIPT, ATTRIBUTE, SVG, LINK, BIDI].join(" ");
const FILE_NAME = "<img src=x onerror=window.__pwned=5>.conf";

/** Nothing ran, nothing was injected, the override is shown as its code, never raw. */
async function harmless(page: Page): Promise<void> {
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  await expect(page.locator('img[src="x"]')).toHaveCount(0);
  await expect(page.locator("svg[onload]")).toHaveCount(0);
  await expect(page.locator('a[href^="javascript:"]')).toHaveCount(0);
  const text = await page.locator("body").innerText();
  expect(text).not.toContain("\u202E");
}

test("hostile text from a cluster and a host shows as text on every page", async ({ page }) => {
  test.setTimeout(180_000);
  const dialogs: string[] = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const event = `grappe-corpus-${process.pid}`;
  try {
    kubectl(["annotate", "node", node, "--overwrite", `projectcalico.org/IPv4Address=${CORPUS}`]);
    kubectl(
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: event, namespace: "default" },
        involvedObject: { kind: "Node", name: node, apiVersion: "v1" },
        type: "Warning",
        reason: `Corpus${SVG}`,
        message: CORPUS,
        source: { component: "grappe-e2e" },
        firstTimestamp: new Date().toISOString(),
        lastTimestamp: new Date().toISOString(),
        count: 1,
      }),
    );
    onHost(
      node,
      `cd /etc/cni/net.d && printf '%s' '{}' > '${FILE_NAME}' && ` +
        `printf '%s\\n' '{"name": "x", "note": "${SCRIPT.replace(/"/g, "")} ${LINK}"}' > 99-corpus.conflist`,
    );

    await login(page);
    // The nodes table: the annotation as the node's Calico address.
    await page.goto(`/c/${cluster}/nodes?per_page=500`);
    await hydrated(page);
    const row = page.locator(`tr[data-node="${node}"]`);
    await expect(row).toContainText(SCRIPT, { timeout: 15_000 });
    await expect(row).toContainText(ATTRIBUTE);
    await expect(row).toContainText("<U+202E>evil");
    await harmless(page);

    // The node page: the annotation (its network card), the event's message and reason.
    await page.goto(`/c/${cluster}/nodes/${node}`);
    await hydrated(page);
    await expect(page.getByTestId("node-network")).toContainText(SCRIPT);
    const events = page.getByTestId("events");
    await expect(events).toContainText(ATTRIBUTE, { timeout: 15_000 });
    await expect(events).toContainText(`Corpus${SVG}`);
    await expect(events).toContainText(LINK);
    await harmless(page);
    await shot(page, "15-corpus-node");

    // The host check: the file name and the file's content.
    await checkHost(page, cluster, node);
    const host = page.getByTestId("host");
    await expect(host).toContainText(FILE_NAME, { timeout: 30_000 });
    await host.locator("summary", { hasText: "99-corpus.conflist" }).click();
    await expect(host).toContainText(LINK);
    await harmless(page);
    await shot(page, "16-corpus-host");

    // The overview (its diagnostics carry node evidence).
    await page.goto(`/c/${cluster}/overview`);
    await hydrated(page);
    await harmless(page);
    expect(dialogs).toEqual([]);
  } finally {
    kubectl(["annotate", "node", node, "projectcalico.org/IPv4Address-"]);
    kubectl(["delete", "event", event, "-n", "default", "--ignore-not-found"]);
    onHost(node, `cd /etc/cni/net.d && rm -f '${FILE_NAME}' 99-corpus.conflist`);
  }
});
