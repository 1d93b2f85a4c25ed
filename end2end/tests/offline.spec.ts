import { expect, test, type Page } from "@playwright/test";
import { type Browser } from "@playwright/test";
import { apiGet, freshCustomer, hydrated, screenshot, signIn } from "./helpers";

// Offline-first: pages visited once open from the service worker's cache with the age of what
// they show; a request made offline is queued and sent exactly once; sign-out leaves nothing.

async function controlled(page: Page) {
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, undefined, { timeout: 15_000 });
}

test("dashboard and customer page open offline from cache, with the offline banner", async ({ page, context }, testInfo) => {
  await signIn(page, "rep");
  await controlled(page);
  const totals = await page.getByTestId("fleet-totals").textContent();
  const link = page.getByTestId("customer-list").getByRole("link").first();
  const name = (await link.textContent()) ?? "";
  await link.click();
  await expect(page.getByTestId("customer-name")).toHaveText(name);
  const customerUrl = page.url();
  // Reached inside the app: the service worker caches the page's HTML as well.
  await expect
    .poll(() => page.evaluate(async (url) => !!(await caches.match(url)), new URL(customerUrl).pathname))
    .toBe(true);
  // A full load of each page while online puts it in the cache.
  await page.goto("/");
  await hydrated(page);

  await context.setOffline(true);
  try {
    await page.reload();
    await expect(page.getByTestId("fleet-totals")).toHaveText(totals ?? "");
    await hydrated(page);
    await expect(page.getByTestId("offline-banner")).toContainText(/Offline — status as of \d\d:\d\d UTC/);
    await screenshot(page, "dashboard-offline", testInfo);
    await page.goto(customerUrl);
    await expect(page.getByTestId("customer-name")).toHaveText(name);
    await hydrated(page);
    await expect(page.getByTestId("offline-banner")).toBeVisible();
    await expect(page.getByTestId("deploy-link")).toBeVisible();
  } finally {
    await context.setOffline(false);
  }
  await expect(page.getByTestId("offline-banner")).toHaveCount(0);
});

test("a request made offline is queued and sent once, as that Rep's", async ({ page, context }) => {
  await signIn(page, "rep");
  await controlled(page);
  const me = (await apiGet(page, "/api/v1/me")).user;
  const caps: { slug: string }[] = (await apiGet(page, "/api/v1/capabilities")).items;
  // A customer with a dev environment that lacks some capability.
  let target: { customer: string; env: string; capability: string } | undefined;
  for (const c of (await apiGet(page, "/api/v1/customers?limit=200")).items) {
    const detail = await apiGet(page, `/api/v1/customers/${c.id}`);
    const dev = detail.environments.find((e: { name: string }) => e.name === "dev");
    if (!dev) continue;
    const present = new Set(
      detail.deployments.filter((d: { environment: string }) => d.environment === "dev").map((d: { capability: string }) => d.capability),
    );
    const missing = caps.find((cap) => !present.has(cap.slug) && cap.slug !== "customer-360");
    if (missing) {
      target = { customer: c.id, env: dev.id, capability: missing.slug };
      break;
    }
  }
  expect(target, "a customer with room for a dev deployment").toBeTruthy();
  const t = target!;

  await page.goto(`/customers/${t.customer}/deploy`);
  await hydrated(page);
  await context.setOffline(true);
  try {
    await page.locator("#env").selectOption(t.env);
    await page.locator("#capability").selectOption(t.capability);
    await expect(page.getByTestId("changelog")).toBeVisible();
    await page.getByTestId("deploy-submit").click();
    await expect(page.getByTestId("deploy-message")).toContainText("queued");
    await expect(page.getByTestId("outbox-item")).toHaveCount(1);
    await expect(page.getByTestId("outbox-item")).toContainText("pending");
  } finally {
    await context.setOffline(false);
  }
  // Back online: sent, and gone from the outbox.
  await expect(page.getByTestId("outbox")).toHaveCount(0, { timeout: 15_000 });
  // Going offline and online again sends nothing more.
  await context.setOffline(true);
  await context.setOffline(false);
  await page.reload();
  await hydrated(page);

  const deps = (await apiGet(page, `/api/v1/deployments?customer=${t.customer}&capability=${t.capability}&environment=dev`)).items;
  expect(deps).toHaveLength(1);
  const ops = (await apiGet(page, `/api/v1/deployments/${deps[0].id}/operations`)).items;
  expect(ops).toHaveLength(1);
  expect(ops[0].requested_by).toBe(me.id);
  expect(ops[0].kind).toBe("deploy");
  // The request gets its change set made, then waits for approval with it.
  await expect.poll(async () => (await apiGet(page, `/api/v1/operations/${ops[0].id}`)).state, { timeout: 20_000 }).toBe("awaiting_approval");
});

test("after sign-out nothing of the user's data is on the device", async ({ page, context }) => {
  await signIn(page, "rep");
  await controlled(page);
  const name = (await page.getByTestId("customer-list").getByRole("link").first().textContent()) ?? "";
  await page.getByTestId("customer-list").getByRole("link").first().click();
  await expect(page.getByTestId("customer-name")).toHaveText(name);
  await page.goto("/");
  await hydrated(page);
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("nexus.")).length)).toBeGreaterThan(0);

  await page.getByTestId("sign-out").click();
  await page.waitForURL((u) => u.pathname === "/login");
  await expect(page.getByTestId("signed-out")).toBeVisible();
  // Every cached response is gone but the shell's (sign-in page, offline page, bundles, icons).
  await expect
    .poll(async () =>
      page.evaluate(async () => {
        const urls: string[] = [];
        for (const key of await caches.keys()) {
          for (const r of await (await caches.open(key)).keys()) urls.push(new URL(r.url).pathname);
        }
        return urls.filter((p) => !/^\/(login|offline\.html|manifest\.webmanifest|register-sw\.js|icons\/.*|pkg\/.*)$/.test(p));
      }),
    )
    .toEqual([]);
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("nexus.")))).toEqual([]);

  await context.setOffline(true);
  try {
    await page.goto("/").catch(() => undefined);
    const text = await page.locator("body").innerText().catch(() => "");
    expect(text).not.toContain(name);
    expect(text).not.toContain("deployments");
  } finally {
    await context.setOffline(false);
  }
});

/** A fresh customer of the demo Rep with an empty dev environment, made by an Executive in a context of their own. */
async function freshRepCustomer(browser: Browser, baseURL: string) {
  const exec = await browser.newContext({ baseURL });
  try {
    const page = await exec.newPage();
    await signIn(page, "executive");
    return await freshCustomer(page, baseURL, "Offline Foods");
  } finally {
    await exec.close();
  }
}

/** On the deploy page of `customer`, offline: queues lead-scoring to its dev environment. */
async function queueOffline(page: Page, customer: string, env: string) {
  await page.goto(`/customers/${customer}/deploy`);
  await hydrated(page);
  await page.context().setOffline(true);
  await page.locator("#env").selectOption(env);
  await page.locator("#capability").selectOption("lead-scoring");
  await expect(page.getByTestId("changelog")).toBeVisible();
  await page.getByTestId("deploy-submit").click();
  await expect(page.getByTestId("deploy-message")).toContainText("queued");
  await expect(page.getByTestId("outbox-item")).toContainText("pending");
}

/** The session cookie gone while offline, as the browser drops it when it expires (its Max-Age is the token's lifetime). */
async function sessionExpires(page: Page) {
  await page.context().clearCookies();
  expect(await page.request.get("/api/v1/me").then((r) => r.status())).toBe(401);
}

test("a request queued offline waits through an expired session and is sent once after signing in again", async ({ page, context, browser, baseURL }) => {
  const t = await freshRepCustomer(browser, baseURL!);
  await signIn(page, "rep");
  await controlled(page);
  const me = (await apiGet(page, "/api/v1/me")).user;
  const refused = page.waitForResponse((r) => r.url().includes("/sfn/request-deployment"), { timeout: 30_000 });
  try {
    await queueOffline(page, t.customer, t.env);
    await sessionExpires(page);
  } finally {
    await context.setOffline(false);
  }
  // Online again but signed out: the attempt is refused and the request stays queued.
  expect((await refused).status()).toBe(401);
  await expect(page.getByTestId("outbox-item")).toContainText("pending");
  expect(await page.evaluate(() => localStorage.getItem("nexus.outbox"))).toContain(me.id);

  // Signing in again as the same Rep sends it.
  await signIn(page, "rep");
  await expect(page.getByTestId("outbox")).toHaveCount(0, { timeout: 15_000 });
  await page.reload();
  await hydrated(page);
  const deps = (await apiGet(page, `/api/v1/deployments?customer=${t.customer}&capability=lead-scoring&environment=dev`)).items;
  expect(deps).toHaveLength(1);
  const ops = (await apiGet(page, `/api/v1/deployments/${deps[0].id}/operations`)).items;
  expect(ops).toHaveLength(1);
  expect(ops[0].requested_by).toBe(me.id);
  await expect.poll(async () => (await apiGet(page, `/api/v1/operations/${ops[0].id}`)).state, { timeout: 20_000 }).toBe("awaiting_approval");
});

test("someone else signing in after an expired session finds nothing of the previous user's", async ({ page, context, browser, baseURL }) => {
  const t = await freshRepCustomer(browser, baseURL!);
  await signIn(page, "rep");
  await controlled(page);
  try {
    await queueOffline(page, t.customer, t.env);
    await sessionExpires(page);
  } finally {
    await context.setOffline(false);
  }
  // What the Rep left: their queued request, their owner mark, their cached pages.
  expect(await page.evaluate(() => localStorage.getItem("nexus.outbox"))).not.toBeNull();
  expect(await page.evaluate(() => localStorage.getItem("nexus.owner"))).not.toBeNull();
  expect((await cachedUrls(page)).some((u) => u.startsWith(`/customers/${t.customer}`))).toBe(true);

  await signIn(page, "executive");
  const me = (await apiGet(page, "/api/v1/me")).user;
  // The Rep's queued request is gone, never sent; the device now holds only the Executive's data.
  await expect(page.getByTestId("outbox")).toHaveCount(0);
  await expect
    .poll(() =>
      page.evaluate(() => [JSON.parse(localStorage.getItem("nexus.outbox") ?? "[]"), JSON.parse(localStorage.getItem("nexus.owner") ?? "null")]),
    )
    .toEqual([[], me.id]);
  await expect
    .poll(async () => (await cachedUrls(page)).filter((u) => u.startsWith(`/customers/${t.customer}`)))
    .toEqual([]);
  const deps = (await apiGet(page, `/api/v1/deployments?customer=${t.customer}&capability=lead-scoring&environment=dev`)).items;
  expect(deps).toHaveLength(0);
});

/** Paths (with queries) of everything in the service worker's caches. */
async function cachedUrls(page: Page) {
  return page.evaluate(async () => {
    const urls: string[] = [];
    for (const key of await caches.keys()) {
      for (const r of await (await caches.open(key)).keys()) urls.push(new URL(r.url).pathname + new URL(r.url).search);
    }
    return urls;
  });
}

test("the pages split into their own wasm chunk are cached at install, open inside the app and offline", async ({ page, context }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await signIn(page, "executive");
  await controlled(page);
  // The everyday page does not load the chunk.
  expect(await (await page.request.get("/")).text()).not.toMatch(/\/pkg\/split_/);
  // Cached when the service worker installed, before any page of the chunk was opened.
  const chunks = async () => (await cachedUrls(page)).filter((u) => /^\/pkg\/split_[A-Za-z0-9_.-]+\.wasm$/.test(u));
  await expect.poll(chunks).toHaveLength(1);

  // Reached inside the app: the router loads the chunk, then renders the page.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Catalog" }).click();
  await expect(page).toHaveURL(/\/catalog$/);
  await expect(page.getByTestId("catalog").getByTestId("capability").first()).toBeVisible();
  await page.goto("/catalog");
  await hydrated(page);

  await context.setOffline(true);
  try {
    await page.reload();
    await expect(page.getByTestId("catalog").getByTestId("capability").first()).toBeVisible();
    // Hydrated from the cached chunk: the page's links work in the app.
    await hydrated(page);
    await page.getByTestId("usage-link").first().click();
    await expect(page).toHaveURL(/\/catalog\?usage=/);
  } finally {
    await context.setOffline(false);
  }
  expect(errors).toEqual([]);
});
