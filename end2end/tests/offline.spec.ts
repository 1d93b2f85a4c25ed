import { expect, test, type Page } from "@playwright/test";
import { apiGet, hydrated, screenshot, signIn } from "./helpers";

// Offline-first: pages visited once open from the service worker's cache with the age of what
// they show; a request made offline is queued and sent exactly once; sign-out leaves nothing.

async function controlled(page: Page) {
  await page.waitForFunction(() => navigator.serviceWorker?.controller !== null, undefined, { timeout: 15_000 });
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
  expect(ops[0].state).toBe("awaiting_approval");
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
