import { expect, test, type Page } from "@playwright/test";
import { USERS, apiGet, freshCustomer, hydrated, screenshot, signIn } from "./helpers";

// The pages of each role against the server with the emulator and the demo data.

type Customer = { id: string; name: string; owner_id: string };

// Customers the dashboard lists a page (app/src/api/fleet.rs DASHBOARD_CUSTOMERS).
const DASHBOARD_PAGE = 24;

async function customers(page: Page): Promise<Customer[]> {
  return (await apiGet(page, "/api/v1/customers?limit=200")).items;
}

for (const who of ["executive", "manager", "rep"] as const) {
  test(`${who} signs in and sees the fleet and customers of their scope`, async ({ page }, testInfo) => {
    await signIn(page, who);
    await expect(page.getByTestId("fleet-totals")).toContainText("deployments");
    const mine = await customers(page);
    const listed = page.getByTestId("customer-list").getByRole("link");
    // One page of customers, "More customers" for the rest.
    await expect(listed).toHaveCount(Math.min(mine.length, DASHBOARD_PAGE));
    await expect(page.getByTestId("more-customers")).toHaveCount(mine.length > DASHBOARD_PAGE ? 1 : 0);
    // The navigation offers what the role may use (the server checks every call anyway).
    const nav = page.getByRole("navigation", { name: "Main" });
    await expect(nav.getByRole("link", { name: "Approvals" })).toBeVisible();
    await expect(nav.getByRole("link", { name: "Audit log" })).toHaveCount(who === "rep" ? 0 : 1);
    await screenshot(page, `dashboard-${who}`, testInfo);
  });
}

test("the fleet grid filters by environment and drills down to who runs a capability", async ({ page }) => {
  await signIn(page, "executive");
  await hydrated(page);
  const rows = page.getByTestId("fleet-grid").locator("tbody tr");
  const all = await rows.count();
  expect(all).toBeGreaterThan(0);
  await page.getByLabel("Environment").selectOption("prod");
  await expect(rows.first()).toBeVisible();
  const envs = await rows.locator("td:nth-child(2)").allTextContents();
  expect(envs.every((e) => e === "prod")).toBe(true);
  expect(envs.length).toBeLessThan(all);
  await page.getByLabel("Environment").selectOption("");
  await expect(rows).toHaveCount(all);

  const capability = (await rows.first().locator("td").first().textContent())!.trim();
  await rows.first().getByRole("link").click();
  await expect(page).toHaveURL(new RegExp(`/catalog\\?usage=${capability}`));
  await expect(page.getByTestId("usage")).toBeVisible();
});

test("the dashboard searches every customer, not only the page shown", async ({ page }) => {
  await signIn(page, "executive");
  const all = await customers(page);
  const target = all[all.length - 1];
  const search = page.getByRole("searchbox", { name: "Search" });
  await search.fill(target.name.toUpperCase());
  await search.press("Enter");
  await page.waitForURL((u) => u.searchParams.has("q"));
  await hydrated(page);
  // What the server found, the same as the REST search, every word in each name.
  const expected = (await apiGet(page, `/api/v1/customers?limit=200&q=${encodeURIComponent(target.name)}`)).items.map((c: Customer) => c.name);
  expect(expected).toContain(target.name);
  const listed = page.getByTestId("customer-list").getByRole("link");
  await expect(listed).toHaveText(expected.sort((a: string, b: string) => a.toLowerCase().localeCompare(b.toLowerCase())));
  await expect(search).toHaveValue(target.name.toUpperCase());
  // The same words filter the capability grid: no capability is called that, and the page says so.
  await expect(page.getByTestId("fleet-grid").locator("tbody tr")).toHaveCount(0);
  await expect(page.getByTestId("fleet-no-match")).toBeVisible();
  await page.getByTestId("clear-search").click();
  await expect(listed).toHaveCount(Math.min(all.length, DASHBOARD_PAGE));
  await expect(page.getByTestId("fleet-no-match")).toHaveCount(0);
});

test("a Rep sees only their customers; another Rep's customer is 404", async ({ page }) => {
  await signIn(page, "otherRep");
  const theirs = await customers(page);
  expect(theirs.length).toBeGreaterThan(0);
  await signIn(page, "rep");
  const mine = await customers(page);
  const me = (await apiGet(page, "/api/v1/me")).user;
  expect(mine.every((c) => c.owner_id === me.id)).toBe(true);
  const names = await page.getByTestId("customer-list").getByRole("link").allTextContents();
  for (const c of theirs) expect(names).not.toContain(c.name);

  const response = await page.goto(`/customers/${theirs[0].id}`);
  expect(response?.status()).toBe(404);
  await expect(page.getByTestId("error-panel")).toContainText("not found");
  await expect(page.getByText(theirs[0].name)).toHaveCount(0);
});

test("customer and deployment pages show environments, status, parameters and history", async ({ page }, testInfo) => {
  await signIn(page, "rep");
  await page.getByTestId("customer-list").getByRole("link").first().click();
  await expect(page.getByTestId("customer-name")).toBeVisible();
  await expect(page.getByRole("heading", { name: "Environments" })).toBeVisible();
  await screenshot(page, "customer", testInfo);
  await page.getByTestId("deployment-list").getByRole("link").first().click();
  await expect(page.getByTestId("deployment-status")).toBeVisible();
  await expect(page.getByTestId("operations").getByRole("listitem").first()).toBeVisible();
  await expect(page.getByTestId("tags")).toContainText("CostCenter");
  await screenshot(page, "deployment", testInfo);
});

test("a Sales Manager decides a Rep's request from the inbox", async ({ page }, testInfo) => {
  await signIn(page, "manager");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Approvals" }).click();
  await hydrated(page);
  const decidable = page.getByTestId("approval").filter({ has: page.getByTestId("reject") });
  const before = await decidable.count();
  expect(before).toBeGreaterThan(0);
  await screenshot(page, "approvals", testInfo);
  await decidable.first().getByLabel("Note (optional)").fill("not this quarter");
  await decidable.first().getByTestId("reject").click();
  await expect(decidable).toHaveCount(before - 1);
});

test("an approver sees the change set a request waits with, approves it with a note, and the note is shown", async ({ page, baseURL }) => {
  await signIn(page, "executive");
  const slot = await freshCustomer(page, baseURL!, "Four Eyes Co");
  await signIn(page, "rep");
  const r = await page.request.post("/api/v1/deployments", {
    headers: { origin: baseURL! },
    data: { environment_id: slot.env, capability: "lead-scoring", version: "1.1.0", parameters: { Environment: "dev" } },
  });
  expect(r.status(), await r.text()).toBe(202);
  const op = await r.json();
  await expect.poll(async () => (await apiGet(page, `/api/v1/operations/${op.id}`)).state, { timeout: 20_000 }).toBe("awaiting_approval");

  await signIn(page, "manager");
  await page.goto("/approvals");
  await hydrated(page);
  const card = page.getByTestId("approval").filter({ hasText: slot.name });
  await expect(card.getByTestId("approval-changes")).toContainText("ScoreTable");
  await card.getByLabel("Note (optional)").fill("Checked the change set.");
  await card.getByTestId("approve").click();
  await expect(card).toHaveCount(0);
  await expect.poll(async () => (await apiGet(page, `/api/v1/operations/${op.id}`)).state).toBe("preview_ready");
  await page.goto(`/deployments/${op.deployment_id}`);
  await expect(page.getByTestId("decision-note")).toContainText("Checked the change set.");
});

test("the catalog lists every capability with its versions", async ({ page }) => {
  await signIn(page, "rep");
  await page.goto("/catalog");
  const caps = (await apiGet(page, "/api/v1/capabilities")).items;
  await expect(page.getByTestId("catalog").getByRole("listitem").filter({ has: page.getByRole("heading") })).toHaveCount(
    caps.length,
  );
});

test("the catalog says which of the user's customers run which version", async ({ page }, testInfo) => {
  await signIn(page, "rep");
  await page.goto("/catalog");
  await hydrated(page);
  const card = page.getByTestId("capability").filter({ has: page.getByRole("heading", { name: "AI Lead Scoring" }) });
  await expect(page.getByTestId("usage")).toHaveCount(0);
  // A touch target at least 24 px tall (WCAG 2.5.8; Lighthouse's target-size audit).
  expect((await card.getByTestId("usage-link").boundingBox())!.height).toBeGreaterThanOrEqual(24);
  await card.getByTestId("usage-link").click();
  await expect(page).toHaveURL(/\/catalog\?usage=lead-scoring/);
  const usage = card.getByTestId("usage");
  await expect(usage).toBeVisible();

  // The same counts the API gives for the Rep's running deployments, by version.
  const deployments = (await apiGet(page, "/api/v1/deployments?capability=lead-scoring&limit=200")).items.filter(
    (d: { status: string }) => d.status !== "deleted",
  );
  const byVersion = new Map<string, number>();
  for (const d of deployments) byVersion.set(d.version, (byVersion.get(d.version) ?? 0) + 1);
  const rows = usage.getByTestId("usage-version");
  await expect(rows).toHaveCount(byVersion.size);
  for (const [version, count] of byVersion) {
    const row = rows.filter({ hasText: `v${version}` });
    await expect(row.getByTestId("usage-count")).toHaveText(String(count));
  }
  // Each customer links to its page.
  const first = usage.getByRole("link").first();
  await expect(first).toHaveAttribute("href", /^\/customers\/[0-9A-Z]{26}$/);
  await screenshot(page, "catalog-usage", testInfo);
});

test("the audit log lists events, filters, searches and exports", async ({ page }) => {
  await signIn(page, "executive");
  await page.goto("/audit?action=auth.");
  const rows = page.getByTestId("audit").locator("tbody tr");
  await expect(rows.first()).toBeVisible();
  for (const action of await rows.locator("td:nth-child(3)").allTextContents()) {
    expect(action.startsWith("auth.")).toBe(true);
  }

  // The form's other filters: a target, and days (UTC) — a GET form, so the URL carries them.
  await hydrated(page);
  const today = new Date().toISOString().slice(0, 10);
  await page.getByLabel("Target").fill("user/exec@demo.nexus");
  await page.getByLabel("From").fill(today);
  await page.getByLabel("To").fill(today);
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/target=user%2Fexec%40demo\.nexus/);
  await expect(rows.first()).toBeVisible();
  for (const target of await rows.locator("td:nth-child(4)").allTextContents()) {
    expect(target).toBe("user/exec@demo.nexus");
  }
  const href = await page.getByTestId("audit-export").getAttribute("href");
  expect(href).toContain("target=user%2Fexec%40demo.nexus");
  expect(href).toContain(`from=${today}T00%3A00%3A00.000Z`);
  const exported = await page.request.get(href!);
  expect(exported.status()).toBe(200);
  const lines = (await exported.text()).trim().split("\n");
  expect(lines.length).toBeGreaterThan(1);
  expect(lines.slice(1).every((l) => l.includes("user/exec@demo.nexus"))).toBe(true);

  // Search: every word somewhere in who, action, target or outcome.
  await page.goto("/audit");
  await hydrated(page);
  await page.getByLabel("Search").fill("exec@demo.nexus login");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/q=exec%40demo\.nexus(\+|%20)login/);
  await expect(rows.first()).toBeVisible();
  for (const row of await rows.all()) {
    const text = (await row.locator("td").allTextContents()).slice(1).join(" ").toLowerCase();
    expect(text).toContain("exec@demo.nexus");
    expect(text).toContain("login");
  }
  expect(await page.getByTestId("audit-export").getAttribute("href")).toContain("q=exec%40demo.nexus%20login");

  // Nothing happened tomorrow; a day that is not a date is refused by name.
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  await page.goto(`/audit?from=${tomorrow}`);
  await expect(page.getByTestId("audit-empty")).toBeVisible();
  await page.goto("/audit?from=2026-02-30");
  await expect(page.getByText("is not a date")).toBeVisible();
});

test("an Executive adds a Rep to a team and deactivates them; a Rep may not manage users", async ({ page }) => {
  await signIn(page, "executive");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
  await hydrated(page);
  const email = `e2e-${Date.now()}@demo.nexus`;
  const form = page.getByTestId("new-user");
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Name").fill("Eve Example");
  await form.getByLabel("Role").selectOption("rep");
  await form.getByLabel("Sales Manager (for a Rep)").selectOption({ label: "Morgan Manager" });
  await form.getByLabel("First password").fill("E2e-Password-2026!");
  await form.getByRole("button", { name: "Add user" }).click();
  const row = page.getByTestId("user-row").filter({ hasText: email });
  await expect(row).toContainText("Morgan Manager");
  await expect(row).toContainText("active");
  await row.getByRole("button", { name: "Deactivate" }).click();
  await expect(row).toContainText("deactivated");

  await signIn(page, "rep");
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" })).toHaveCount(0);
  const response = await page.goto("/users");
  expect(response?.status()).toBe(403);
  await expect(page.getByTestId("error-panel")).toContainText("Not allowed");
});

test("notifications follow a request: its approver sees it waiting, the Rep sees the decision", async ({ page, baseURL }) => {
  await signIn(page, "executive");
  const slot = await freshCustomer(page, baseURL!, "Notify Co");
  await signIn(page, "rep");
  const r = await page.request.post("/api/v1/deployments", {
    headers: { origin: baseURL! },
    data: { environment_id: slot.env, capability: "lead-scoring", version: "1.0.0", parameters: { Environment: "dev" } },
  });
  expect(r.status(), await r.text()).toBe(202);
  const op = await r.json();
  // The request waits for approval once its change set is made.
  await expect.poll(async () => (await apiGet(page, `/api/v1/operations/${op.id}`)).state, { timeout: 20_000 }).toBe("awaiting_approval");

  await signIn(page, "manager");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Notifications" }).click();
  // This run's customer only (a store kept from earlier runs has other "Notify Co"s).
  const mine = page.getByTestId("notification").filter({ hasText: slot.name });
  await expect(mine.first()).toContainText("awaiting approval");
  const rejected = await page.request.post(`/api/v1/operations/${op.id}/reject`, { headers: { origin: baseURL! }, data: {} });
  expect(rejected.status(), await rejected.text()).toBe(200);

  await signIn(page, "rep");
  await page.goto("/notifications");
  await expect(mine.first()).toContainText("rejected");
  // Requested (queued), its change set made, waiting, rejected.
  await expect(mine).toHaveCount(4);

  // Another team's Rep hears nothing of it.
  await signIn(page, "otherRep");
  await page.goto("/notifications");
  await expect(page.getByRole("heading", { name: "Notifications" })).toBeVisible();
  await expect(mine).toHaveCount(0);
});
