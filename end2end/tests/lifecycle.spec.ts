import { expect, test, type Page } from "@playwright/test";
import { apiGet, hydrated, screenshot, signIn } from "./helpers";

// The whole deploy flow in the browser against the AWS emulator: preview, confirm, live stack
// events, Healthy; then an upgrade and a rollback from the deployment's page.

test.describe.configure({ timeout: 240_000 });

/** A new customer of the demo Rep with a dev environment in a fresh account (no stack collides). */
async function freshCustomer(page: Page, baseURL: string) {
  const headers = { origin: baseURL };
  const users = (await apiGet(page, "/api/v1/users?limit=200")).items;
  const rep = users.find((u: { email: string }) => u.email === "rep@demo.nexus");
  const suffix = `${Date.now()}`.slice(-9);
  const customer = await page.request.post("/api/v1/customers", {
    headers,
    data: { name: `E2E Foods ${suffix}`, owner_id: rep.id, cost_center: "CC-E2E" },
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
      external_id: `e2e-${suffix}`,
    },
  });
  expect(env.status(), await env.text()).toBe(201);
  return { customer: c.id as string, env: (await env.json()).id as string };
}

test("deploy with preview and live events to Healthy, upgrade, then roll back", async ({ page, baseURL }, testInfo) => {
  await signIn(page, "executive");
  const slot = await freshCustomer(page, baseURL!);
  await page.goto(`/customers/${slot.customer}/deploy`);
  await hydrated(page);
  await page.locator("#env").selectOption(slot.env);
  await page.locator("#capability").selectOption("lead-scoring");
  await page.locator("#version").selectOption("1.0.0");
  // The toolkit's own /health stands in for the capability's health endpoint.
  await page.locator("#param-HealthEndpoint").fill(`${baseURL}/health`);
  await screenshot(page, "deploy-wizard", testInfo);
  await page.getByTestId("deploy-submit").click();
  await page.waitForURL(/\/deployments\//);
  await hydrated(page);

  // The change set is shown before anything runs, with an explicit confirm.
  const preview = page.getByTestId("preview");
  await expect(preview).toBeVisible({ timeout: 90_000 });
  await expect(preview.locator("tbody tr").first()).toContainText("Add");
  await screenshot(page, "deploy-preview", testInfo);
  await page.getByTestId("op-confirm-and-run").click();

  // Stack events arrive while it runs; the page ends Active and Healthy.
  await expect(page.getByTestId("stack-events").getByRole("listitem").first()).toBeVisible({ timeout: 90_000 });
  await expect(page.getByTestId("deployment-status").locator("[data-status=active]")).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId("deployment-status")).toContainText("health: healthy", { timeout: 60_000 });
  await expect(page.getByTestId("outputs")).toContainText("ScoreTableName");
  await screenshot(page, "deploy-done", testInfo);

  // Upgrade to 1.1.0 (previewed and confirmed), then roll back to 1.0.0.
  await page.locator("#upgrade-version").selectOption("1.1.0");
  await page.getByTestId("upgrade").click();
  await expect(page.getByTestId("preview")).toBeVisible({ timeout: 90_000 });
  await page.getByTestId("op-confirm-and-run").click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("v1.1.0", { timeout: 120_000 });
  await expect(page.getByTestId("rollback")).toBeEnabled({ timeout: 60_000 });
  await page.getByTestId("rollback").click();
  await expect(page.getByTestId("preview")).toBeVisible({ timeout: 90_000 });
  await page.getByTestId("op-confirm-and-run").click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("v1.0.0", { timeout: 120_000 });
  const kinds = await page.getByTestId("operations").getByRole("listitem").allTextContents();
  expect(kinds[0]).toContain("rollback");
  expect(kinds[1]).toContain("upgrade");
  expect(kinds[2]).toContain("deploy");
});
