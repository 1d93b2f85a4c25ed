// Measures first contentful paint and hydration time of the main pages in Chromium, served
// locally: `BASE_URL=http://127.0.0.1:3000 node bench/page-timing.mjs`.
// Each page is loaded RUNS times in a fresh context (cold cache, no service worker yet); with
// CACHE=warm, RUNS times in one context whose service worker installed on a first, unmeasured
// visit (a returning user). The figures are medians and the spread (min-max) in milliseconds.
// "hydrated" is the page's own mark (app/src/components/hydration.rs). THROTTLE=slow4g adds what
// Lighthouse's mobile run simulates, applied for real through DevTools: 150 ms round trips,
// 1.6 Mbit/s down, 750 kbit/s up, the CPU slowed 4x — to the page's own requests; what the
// service worker fetches (CACHE=warm: the HTML, network-first) is not throttled.
import { chromium } from "@playwright/test";

const BASE = process.env.BASE_URL ?? "http://127.0.0.1:3000";
const RUNS = Number(process.env.RUNS ?? 7);
const THROTTLE = process.env.THROTTLE ?? "none";
if (!["none", "slow4g"].includes(THROTTLE)) throw new Error(`THROTTLE must be none or slow4g, not ${THROTTLE}`);
const CACHE = process.env.CACHE ?? "cold";
if (!["cold", "warm"].includes(CACHE)) throw new Error(`CACHE must be cold or warm, not ${CACHE}`);
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
async function throttle(context, page) {
  if (THROTTLE !== "slow4g") return;
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 150,
    downloadThroughput: (1.6 * 1024 * 1024) / 8,
    uploadThroughput: (750 * 1024) / 8,
  });
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
}

async function newContext() {
  const context = await browser.newContext({ serviceWorkers: CACHE === "warm" ? "allow" : "block" });
  await context.addCookies(cookies);
  if (CACHE === "warm") {
    // The first visit installs the service worker, which caches the shell and the bundle.
    const page = await context.newPage();
    await page.goto(`${BASE}/`);
    await page.waitForFunction(() => navigator.serviceWorker?.controller != null, undefined, { timeout: 30_000 });
    await page.close();
  }
  return context;
}

for (const path of pages) {
  const fcp = [];
  const hydrated = [];
  let context = CACHE === "warm" ? await newContext() : null;
  for (let i = 0; i < RUNS; i++) {
    if (CACHE === "cold") context = await newContext();
    const page = await context.newPage();
    await throttle(context, page);
    await page.goto(`${BASE}${path}`);
    await page.waitForSelector("html[data-hydrated=true]", { state: "attached" });
    const t = await page.evaluate(() => ({
      fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
      hydrated: performance.getEntriesByName("hydrated", "mark")[0]?.startTime ?? NaN,
    }));
    fcp.push(t.fcp);
    hydrated.push(t.hydrated);
    await (CACHE === "cold" ? context.close() : page.close());
  }
  if (CACHE === "warm") await context.close();
  console.log(JSON.stringify({ path, runs: RUNS, throttle: THROTTLE, cache: CACHE, fcp_ms: stats(fcp), hydrated_by_ms: stats(hydrated) }));
}
await browser.close();
