// Playwright drives Debian's Chromium (/usr/bin/chromium); no browser is downloaded.
// The server is started by scripts/test (see scripts/e2e), which exports GRAPPE_E2E_URL and the
// login to use; global-setup.ts waits until it answers.
import { defineConfig } from "@playwright/test";

const output = process.env.GRAPPE_E2E_OUTPUT ?? "../test-output/e2e";

export default defineConfig({
  testDir: "./tests",
  // Per run when several run at once (scripts/e2e's GRAPPE_E2E_SHARD): Playwright empties it.
  outputDir: process.env.GRAPPE_E2E_ARTIFACTS ?? `${output}/artifacts`,
  globalSetup: "./global-setup.ts",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL: process.env.GRAPPE_E2E_URL ?? "http://127.0.0.1:8080",
    headless: true,
    screenshot: "only-on-failure",
    // A failed test keeps its trace's DOM snapshots and network, without the screencast: the
    // screencast cost about a fifth of the browser's CPU (three specs: 79 CPU-s and 52 s with
    // it, 64 and 42.5 s without); the failure's own screenshot stays.
    trace: { mode: "retain-on-failure", screenshots: false },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
