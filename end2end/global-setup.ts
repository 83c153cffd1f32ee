// Waits for the Grappe server under test to answer /healthz (it may still be starting).
export default async function globalSetup(): Promise<void> {
  const base = process.env.GRAPPE_E2E_URL ?? "http://127.0.0.1:8080";
  const deadline = Date.now() + 60_000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Grappe at ${base} did not answer /healthz within 60 s: ${last}`);
}
