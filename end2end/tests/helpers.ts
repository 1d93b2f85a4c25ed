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
