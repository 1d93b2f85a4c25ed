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

