import { expect, test } from "@playwright/test";
import { PASSWORD, USERS, screenshot, signIn } from "./helpers";

// The same pages on a phone (390 x 844) and with JavaScript off (server-rendered HTML only).

test("dashboard, customer and deployment fit a phone screen @mobile", async ({ page }, testInfo) => {
  await signIn(page, "rep");
  const fits = async () =>
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  await fits();
  await screenshot(page, "mobile-dashboard", testInfo);
  await page.getByTestId("customer-list").getByRole("link").first().click();
  await expect(page.getByTestId("customer-name")).toBeVisible();
  await fits();
  await screenshot(page, "mobile-customer", testInfo);
  await page.getByTestId("deployment-list").getByRole("link").first().click();
  await expect(page.getByTestId("deployment-status")).toBeVisible();
  await fits();
  await screenshot(page, "mobile-deployment", testInfo);
});

test("sign-in and the pages work without JavaScript @nojs", async ({ page }, testInfo) => {
  const response = await page.goto("/");
  // Signed out: sent to the sign-in form by the server itself.
  expect(new URL(page.url()).pathname).toBe("/login");
  expect(response?.status()).toBe(200);
  await page.getByLabel("Email").fill(USERS.manager.email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname === "/");
  await expect(page.getByTestId("signed-in-as")).toContainText("Sales Manager");
  await expect(page.getByTestId("fleet-grid").locator("tbody tr").first()).toBeVisible();
  await screenshot(page, "nojs-dashboard", testInfo);
  // The customer search is a plain GET form: the server answers it.
  const first = (await page.getByTestId("customer-list").getByRole("link").first().textContent())!.trim();
  await page.getByRole("searchbox", { name: "Search" }).fill(first);
  await page.getByTestId("search-all").click();
  await page.waitForURL((u) => u.searchParams.get("q") === first);
  await expect(page.getByTestId("customer-list").getByRole("link").first()).toHaveText(first);
  for (const name of await page.getByTestId("customer-list").getByRole("link").allTextContents()) {
    for (const word of first.toLowerCase().split(/\s+/)) expect(name.toLowerCase()).toContain(word);
  }
  await page.getByTestId("clear-search").click();
  await page.getByTestId("customer-list").getByRole("link").first().click();
  await expect(page.getByTestId("customer-name")).toBeVisible();
  await page.getByTestId("deployment-list").getByRole("link").first().click();
  await expect(page.getByTestId("operations")).toBeVisible();
  await page.goto("/approvals");
  await expect(page.getByRole("heading", { name: "Approvals" })).toBeVisible();
  await page.goto("/audit");
  await expect(page.getByTestId("audit").locator("tbody tr").first()).toBeVisible();
  await page.getByTestId("sign-out").click();
  await page.waitForURL((u) => u.pathname === "/login");
  await page.goto("/");
  expect(new URL(page.url()).pathname).toBe("/login");
});
