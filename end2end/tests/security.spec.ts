import { expect, test } from "@playwright/test";
import { apiGet, hydrated, signIn } from "./helpers";

// Every user-supplied string is rendered as text: markup in a customer's name or a parameter's
// value never runs, on the server-rendered page or after hydration.

const PAYLOAD = `<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>"'>`;

test("markup in customer names and parameter values is shown, never run", async ({ page, baseURL }) => {
  const dialogs: string[] = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await signIn(page, "executive");
  const headers = { origin: baseURL! };
  const users = (await apiGet(page, "/api/v1/users?limit=200")).items;
  const rep = users.find((u: { email: string }) => u.email === "rep@demo.nexus");
  const suffix = `${Date.now()}`.slice(-9);
  const created = await page.request.post("/api/v1/customers", {
    headers,
    data: { name: `XSS ${suffix} ${PAYLOAD}`, slug: `xss-${suffix}`, owner_id: rep.id, cost_center: "CC-XSS" },
  });
  expect(created.status(), await created.text()).toBe(201);
  const customer = await created.json();
  const account = `556${suffix}`;
  const env = await page.request.post(`/api/v1/customers/${customer.id}/environments`, {
    headers,
    data: { name: "dev", account_id: account, region: "us-east-1", role_arn: `arn:aws:iam::${account}:role/NexusDeploymentRole` },
  });
  expect(env.status(), await env.text()).toBe(201);

  // The Rep's request waits for approval (its change set made, nothing run); the value is stored and shown.
  await signIn(page, "rep");
  const request = await page.request.post("/api/v1/deployments", {
    headers,
    data: {
      environment_id: (await env.json()).id,
      capability: "lead-scoring",
      version: "1.0.0",
      parameters: { Environment: "dev", HealthEndpoint: `https://x.example/${PAYLOAD}` },
    },
  });
  expect(request.status(), await request.text()).toBe(202);
  const op = await request.json();

  for (const path of [`/customers/${customer.id}`, `/deployments/${op.deployment_id}`, "/"]) {
    const response = await page.goto(path);
    const html = await response!.text();
    expect(html).not.toContain("<script>window.__xss");
    expect(html).not.toContain('<img src=x onerror');
    await hydrated(page);
    await expect(page.getByText(`XSS ${suffix}`).first()).toBeVisible();
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  }
  await page.goto(`/deployments/${op.deployment_id}`);
  await expect(page.getByTestId("operation-parameters")).toContainText(`https://x.example/${PAYLOAD}`);
  await page.goto(`/customers/${customer.id}`);
  await expect(page.getByTestId("customer-name")).toHaveText(`XSS ${suffix} ${PAYLOAD}`);
  expect(dialogs).toEqual([]);
});

test("a locked account is listed for Executives, unlocked there, and its owner is told", async ({ page, baseURL }) => {
  await signIn(page, "executive");
  const headers = { origin: baseURL! };
  const suffix = `${Date.now()}`.slice(-9);
  const email = `locked-${suffix}@demo.nexus`;
  const password = "Fake-E2e-Password-2026!";
  const created = await page.request.post("/api/v1/users", {
    headers,
    data: { email, name: `Lee Locked ${suffix}`, role: "sales_manager", password },
  });
  expect(created.status(), await created.text()).toBe(201);
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await page.request.post("/api/v1/auth/login", { headers, data: { email, password: "Wrong-Password-1!" } });
    statuses.push(r.status());
  }
  expect(statuses).toEqual([401, 401, 401, 401, 423]);

  await page.goto("/users");
  await hydrated(page);
  const row = page.getByTestId("locked-account").filter({ hasText: `Lee Locked ${suffix}` });
  await expect(row).toContainText("locked until");
  await expect(page.getByTestId("user-row").filter({ hasText: email })).toContainText("locked");
  await row.getByRole("button", { name: "Unlock" }).click();
  await expect(row).toHaveCount(0);
  await expect(page.getByTestId("user-row").filter({ hasText: email })).toContainText("active");

  // The owner signs in and reads what happened to their account.
  await page.context().clearCookies();
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  // Signed in, the page loads the dashboard afresh: wait for that load before going on.
  await page.waitForURL((u) => u.pathname === "/");
  await expect(page.getByTestId("signed-in-as")).toContainText("Sales Manager");
  await hydrated(page);
  await page.goto("/notifications");
  await expect(page.getByTestId("account-notice")).toContainText("5 failed sign-ins from 127.0.0.1 locked your password sign-in");
});
