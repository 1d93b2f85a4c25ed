// Measures first contentful paint and hydration time of the main pages in Chromium, served
// locally: `BASE_URL=http://127.0.0.1:3000 node bench/page-timing.mjs` (make bench runs it).
// Each page is loaded RUNS times in a fresh context (cold cache, no service worker yet); the
// figures are medians and the spread (min-max) in milliseconds.
import { chromium } from "@playwright/test";

const BASE = process.env.BASE_URL ?? "http://127.0.0.1:3000";
const RUNS = Number(process.env.RUNS ?? 7);
const PASSWORD = process.env.NEXUS_DEMO_PASSWORD ?? "Demo-Password-2026!";

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });

async function session() {
  const context = await browser.newContext();
  const r = await context.request.post(`${BASE}/api/v1/auth/login`, {
    data: { email: "exec@demo.nexus", password: PASSWORD },
  });
  if (r.status() !== 200) throw new Error(`sign-in failed: ${r.status()}`);
  const cookies = await context.cookies();
  await context.close();
  return cookies;
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: Math.round(s[Math.floor(s.length / 2)]), min: Math.round(s[0]), max: Math.round(s[s.length - 1]) };
};

const cookies = await session();
const pages = ["/login", "/", "/catalog", "/approvals", "/users"];
for (const path of pages) {
  const fcp = [];
  const hydrated = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext({ serviceWorkers: "block" });
    await context.addCookies(cookies);
    const page = await context.newPage();
    await page.goto(`${BASE}${path}`);
    await page.waitForSelector("html[data-hydrated=true]", { state: "attached" });
    const t = await page.evaluate(() => ({
      fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
      hydrated: performance.now(),
    }));
    fcp.push(t.fcp);
    hydrated.push(t.hydrated);
    await context.close();
  }
  console.log(JSON.stringify({ path, runs: RUNS, fcp_ms: stats(fcp), hydrated_by_ms: stats(hydrated) }));
}
await browser.close();
