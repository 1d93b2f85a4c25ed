import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "@playwright/test";
import { apiGet, freshCustomer, hydrated, screenshot, signIn } from "./helpers";

// The whole deploy flow in the browser against the AWS emulator: preview, confirm, live stack
// events, Healthy; then an upgrade and a rollback from the deployment's page.

test.describe.configure({ timeout: 240_000 });

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

test("a failing deploy shows the failing resource and the reason", async ({ page, baseURL }) => {
  await signIn(page, "executive");
  const headers = { origin: baseURL! };
  // A version whose bucket has a fixed name: a second copy in the same account cannot have it.
  const shipped = readFileSync(join(__dirname, "../../catalog/lead-scoring/1.1.0.yaml"), "utf8");
  const template = shipped
    .replace("Parameters:\n", "Parameters:\n  FixedBucketName:\n    Type: String\n    Description: A bucket name.\n")
    .replace("    Properties:\n      VersioningConfiguration:", "    Properties:\n      BucketName: !Ref FixedBucketName\n      VersioningConfiguration:");
  expect(template).not.toBe(shipped);
  const version = `1.9.${Date.now() % 100000}`;
  const published = await page.request.post("/api/v1/capabilities/lead-scoring/versions", {
    headers,
    data: { version, template },
  });
  expect(published.status(), await published.text()).toBe(201);
  try {
    const slot = await freshCustomer(page, baseURL!);
    const staging = await page.request.post(`/api/v1/customers/${slot.customer}/environments`, {
      headers,
      data: { name: "staging", account_id: slot.account, region: "us-east-1", role_arn: `arn:aws:iam::${slot.account}:role/NexusDeploymentRole` },
    });
    expect(staging.status(), await staging.text()).toBe(201);
    const bucket = `taken-${slot.account}`;
    const ids: string[] = [];
    for (const [env, name] of [[slot.env, "dev"], [(await staging.json()).id, "staging"]]) {
      const r = await page.request.post("/api/v1/deployments", {
        headers,
        data: { environment_id: env, capability: "lead-scoring", version, auto_execute: true, parameters: { Environment: name, FixedBucketName: bucket } },
      });
      expect(r.status(), await r.text()).toBe(202);
      const op = await r.json();
      await expect
        .poll(async () => (await apiGet(page, `/api/v1/operations/${op.id}`)).state, { timeout: 120_000 })
        .toMatch(/succeeded|rolled_back|failed/);
      ids.push(op.deployment_id);
    }
    await page.goto(`/deployments/${ids[1]}`);
    await hydrated(page);
    await expect(page.getByTestId("deployment-status").locator("[data-status=failed]")).toBeVisible();
    const history = page.getByTestId("operations");
    await expect(history).toContainText("ModelBucket");
    await expect(history).toContainText(bucket);
    await expect(page.getByTestId("stack-events")).toContainText("CREATE_FAILED");
  } finally {
    await page.request.post(`/api/v1/capabilities/lead-scoring/versions/${version}/deprecate`, { headers });
  }
});
