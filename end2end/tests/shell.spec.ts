import { expect, test } from "@playwright/test";
import { hydrated, signIn } from "./helpers";

// The architecture end to end: server-rendered HTML, hydration, a server function over HTTP,
// and a service worker that controls the page.

test("the server renders the page, linking the manifest and the service worker", async ({ request }) => {
  const response = await request.get("/status");
  expect(response.status()).toBe(200);
  const html = await response.text();
  expect(html).toContain('<link rel="manifest" href="/manifest.webmanifest"');
  expect(html).toContain('src="/register-sw.js"');
  // Data is in the HTML itself, so the page is useful before (or without) the wasm.
  expect(html).toContain("Platform status");
  expect(html).toMatch(/data-testid="platform-store"[^>]*>embedded</);
  // hash-files: bundle names carry a content hash.
  expect(html).toMatch(/\/pkg\/nexus-toolkit\.[A-Za-z0-9_-]+\.js/);
  // A strict CSP: inline scripts only with this response's nonce (the next test proves the page
  // still hydrates under it, with no console errors).
  const headers = response.headers();
  const csp = headers["content-security-policy"] ?? "";
  const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
  expect(nonce, csp).toBeTruthy();
  expect(html).toContain(`nonce="${nonce}"`);
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain("unsafe-inline");
  expect(headers["x-content-type-options"]).toBe("nosniff");
  const again = (await request.get("/status")).headers()["content-security-policy"];
  expect(again).not.toBe(csp);
});

test("the page hydrates without errors and calls a server function", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });

  await page.goto("/status");
  await expect(page.locator("html[data-hydrated=true]")).toBeAttached();
  await expect(page.getByTestId("platform-health")).toHaveText("All systems operational");

  // Only a hydrated page reacts to the click; the refetch is a GET to the server function.
  const before = await page.getByTestId("checked-at").textContent();
  const call = page.waitForResponse((r) => r.url().includes("/sfn/status") && r.request().method() === "GET");
  await page.getByTestId("refresh-status").click();
  const response = await call;
  expect(response.status()).toBe(200);
  const body = await response.json();
  expect(body.store).toBe("embedded");
  expect(body.checks.map((c: { name: string }) => c.name)).toContain("store");
  await expect(page.getByTestId("refresh-count")).toHaveText("Refreshed once.");
  await expect(page.getByTestId("checked-at")).not.toHaveText(before ?? "");

  expect(errors, errors.join("\n")).toEqual([]);
});

test("the service worker controls the page and the manifest is valid", async ({ page, request }) => {
  await page.goto("/login");
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, undefined, { timeout: 15_000 });
  const scriptURL = await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL);
  expect(scriptURL).toMatch(/\/sw\.js$/);

  const manifest = await (await request.get("/manifest.webmanifest")).json();
  expect(manifest.display).toBe("standalone");
  expect(manifest.start_url).toBe("/");
  const sizes = manifest.icons.map((i: { sizes: string }) => i.sizes);
  expect(sizes).toEqual(expect.arrayContaining(["192x192", "512x512"]));
  expect(manifest.icons.some((i: { purpose?: string }) => i.purpose === "maskable")).toBe(true);
  for (const icon of manifest.icons) {
    const r = await request.get(icon.src);
    expect(r.status(), icon.src).toBe(200);
    expect(r.headers()["content-type"]).toContain("image/png");
  }
});

test("unknown pages answer 404 with a page", async ({ request }) => {
  const response = await request.get("/no/such/page");
  expect(response.status()).toBe(404);
  expect(await response.text()).toContain("Page not found");
});

test("once visited, the page opens and hydrates offline from the service worker's cache", async ({ page, context }) => {
  await page.goto("/status");
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, undefined, { timeout: 15_000 });
  // The first load came before the worker; this one passes through it and is cached.
  await page.reload();
  await expect(page.locator("html[data-hydrated=true]")).toBeAttached();
  const store = await page.getByTestId("platform-store").textContent();

  await context.setOffline(true);
  try {
    await page.reload();
    // The cached page still carries the last-known data, and the cached bundle hydrates it.
    await expect(page.getByTestId("platform-store")).toHaveText(store ?? "embedded");
    await expect(page.locator("html[data-hydrated=true]")).toBeAttached();
    // A page never visited gets the offline page instead of the browser's error.
    await page.goto("/never/visited");
    await expect(page.getByRole("heading", { name: "You are offline" })).toBeVisible();
  } finally {
    await context.setOffline(false);
  }
});

test("the status page at phone width", async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto("/status");
  await expect(page.locator("html[data-hydrated=true]")).toBeAttached();
  // Nothing wider than the screen: no sideways scrolling on a phone.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: testInfo.outputPath("status-360.png"), fullPage: true });
});

test("the bundle is served compressed and immutable; reads revalidate with an ETag", async ({ request }) => {
  const html = await (await request.get("/status")).text();
  const wasm = /\/pkg\/nexus-toolkit\.[A-Za-z0-9_-]+\.wasm/.exec(html)?.[0];
  expect(wasm).toBeTruthy();
  for (const encoding of ["br", "gzip"]) {
    const r = await request.get(wasm!, { headers: { "accept-encoding": encoding } });
    expect(r.status()).toBe(200);
    expect(r.headers()["content-encoding"]).toBe(encoding);
    expect(r.headers()["cache-control"]).toBe("public, max-age=31536000, immutable");
  }

  // A read: private, revalidated, 304 with nothing in it when unchanged.
  const read = await request.get("/api/v1/openapi.json", { headers: { "accept-encoding": "br" } });
  expect(read.status()).toBe(200);
  expect(read.headers()["cache-control"]).toBe("private, no-cache");
  const etag = read.headers()["etag"];
  expect(etag).toMatch(/^W\/"[0-9a-f]{32}"$/);
  const same = await request.get("/api/v1/openapi.json", { headers: { "if-none-match": etag } });
  expect(same.status()).toBe(304);
  expect((await same.body()).length).toBe(0);
});

test.describe("without a service worker (every request reaches the network)", () => {
  test.use({ serviceWorkers: "block" });

  test("the page paints before its bundle is fetched: nothing but the stylesheet in the way", async ({ page, request }) => {
    // No preloads: the bundle is fetched after the first paint (docs/performance.md, "Paint
    // first, then hydrate").
    const html = await (await request.get("/status")).text();
    const head = html.slice(0, html.indexOf("</head>"));
    expect(head).not.toMatch(/<link[^>]*rel="(?:module)?preload"/);
    expect(head).toMatch(/\/pkg\/nexus-toolkit\.[A-Za-z0-9_-]+\.wasm/);

    await page.goto("/status");
    await hydrated(page);
    const timing = await page.evaluate(() => {
      const resources = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
      return {
        stylesheet: resources.find((r) => r.name.endsWith(".css"))?.responseEnd ?? NaN,
        bundle: resources.filter((r) => /\/pkg\/nexus-toolkit\.[A-Za-z0-9_-]+\.(?:js|wasm)$/.test(r.name)).map((r) => r.startTime),
      };
    });
    expect(timing.bundle).toHaveLength(2);
    for (const start of timing.bundle) expect(start).toBeGreaterThan(timing.stylesheet);
  });

  test("a page of the split chunk counts as hydrated only once the chunk is in and wired", async ({ page }) => {
    await signIn(page, "executive");
    // Slow the chunk down, as a phone's link would: the mark must wait for it.
    await page.route(/\/pkg\/split_[A-Za-z0-9_.-]+\.wasm$/, async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await route.continue();
    });
    await page.goto("/catalog");
    await hydrated(page);
    // Both times from the page's own clock: the chunk's arrival, and the "hydrated" mark
    // (components/hydration.rs) set with the attribute.
    const timing = await page.evaluate(() => ({
      chunk: (performance.getEntriesByType("resource") as PerformanceResourceTiming[])
        .filter((r) => /\/pkg\/split_/.test(r.name))
        .map((r) => r.responseEnd),
      hydrated: performance.getEntriesByName("hydrated", "mark").map((m) => m.startTime),
    }));
    expect(timing.chunk, "the chunk was not fetched").toHaveLength(1);
    expect(timing.hydrated).toHaveLength(1);
    expect(timing.chunk[0]).toBeGreaterThan(1_500);
    expect(timing.hydrated[0]).toBeGreaterThan(timing.chunk[0]);
    // Hydrated for real: the page's link navigates inside the app (the router's, not a reload
    // that would drop this window's state).
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
    await page.getByTestId("usage-link").first().click();
    await expect(page).toHaveURL(/\/catalog\?usage=/);
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
  });
});
