import { expect, type Page } from "@playwright/test";

// The demo users (demo credentials, printed by `make run`; NEXUS_DEMO_PASSWORD overrides).
export const PASSWORD = process.env.NEXUS_DEMO_PASSWORD ?? "Demo-Password-2026!";
export const USERS = {
  executive: { email: "exec@demo.nexus", label: "Executive" },
  manager: { email: "manager@demo.nexus", label: "Sales Manager" },
  rep: { email: "rep@demo.nexus", label: "Rep" },
  otherRep: { email: "rep3@demo.nexus", label: "Rep" },
} as const;

export async function hydrated(page: Page) {
  await expect(page.locator("html[data-hydrated=true]")).toBeAttached();
}

/** Signs in through the form and waits for the dashboard. */
export async function signIn(page: Page, who: keyof typeof USERS) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(USERS[who].email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname === "/");
  await expect(page.getByTestId("signed-in-as")).toContainText(USERS[who].label);
  await hydrated(page);
}

/** The signed-in user's customers, through the REST API with the page's session cookie. */
export async function apiGet(page: Page, path: string) {
  const response = await page.request.get(path);
  expect(response.status(), path).toBe(200);
  return response.json();
}

export async function screenshot(page: Page, name: string, testInfo: { outputPath: (n: string) => string }) {
  await page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
}

/** A new customer of the demo Rep with a dev environment in a fresh account (no stack collides); the page must be signed in as an Executive. */
export async function freshCustomer(page: Page, baseURL: string, prefix = "E2E Foods") {
  const headers = { origin: baseURL };
  const users = (await apiGet(page, "/api/v1/users?limit=200")).items;
  const rep = users.find((u: { email: string }) => u.email === "rep@demo.nexus");
  const suffix = `${Date.now()}`.slice(-9);
  const customer = await page.request.post("/api/v1/customers", {
    headers,
    data: { name: `${prefix} ${suffix}`, owner_id: rep.id, cost_center: "CC-E2E" },
  });
  expect(customer.status(), await customer.text()).toBe(201);
  const c = await customer.json();
  const account = `555${suffix}`;
  const env = await page.request.post(`/api/v1/customers/${c.id}/environments`, {
    headers,
    data: {
      name: "dev",
      account_id: account,
      region: "us-east-1",
      role_arn: `arn:aws:iam::${account}:role/NexusDeploymentRole`,
    },
  });
  expect(env.status(), await env.text()).toBe(201);
  return { customer: c.id as string, name: c.name as string, env: (await env.json()).id as string, account };
}


/**
 * A Rep's prod request for a fresh customer, waiting for an Executive with its change set, and
 * a new Executive (no second factor yet) signed in on `page` with the password alone: where the
 * step-up tests start. The page must be signed in as the demo Executive.
 */
export async function prodRequestAwaitingNewExecutive(page: Page, baseURL: string, who: { customer: string; email: string; name: string }) {
  const headers = { origin: baseURL };
  const slot = await freshCustomer(page, baseURL, who.customer);
  const prodAccount = `6${slot.account.slice(1)}`;
  const prod = await page.request.post(`/api/v1/customers/${slot.customer}/environments`, {
    headers,
    data: { name: "prod", account_id: prodAccount, region: "us-east-1", role_arn: `arn:aws:iam::${prodAccount}:role/NexusDeploymentRole` },
  });
  expect(prod.status(), await prod.text()).toBe(201);
  const suffix = `${Date.now()}`.slice(-9);
  const email = `${who.email}-${suffix}@demo.nexus`;
  const password = "Fake-E2e-Password-2026!";
  const created = await page.request.post("/api/v1/users", {
    headers,
    data: { email, name: `${who.name} ${suffix}`, role: "executive", password },
  });
  expect(created.status(), await created.text()).toBe(201);

  await signIn(page, "rep");
  const r = await page.request.post("/api/v1/deployments", {
    headers,
    data: { environment_id: (await prod.json()).id, capability: "lead-scoring", version: "1.1.0", parameters: { Environment: "prod" }, auto_execute: true },
  });
  expect(r.status(), await r.text()).toBe(202);
  const op: string = (await r.json()).id;
  await expect.poll(async () => (await apiGet(page, `/api/v1/operations/${op}`)).state, { timeout: 20_000 }).toBe("awaiting_approval");

  await page.context().clearCookies();
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname === "/");
  return { slot, op, email, password, executive: (await created.json()).id as string };
}
