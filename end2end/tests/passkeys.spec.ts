import { expect, test } from "@playwright/test";
import type { CDPSession, Page } from "@playwright/test";
import { apiGet, hydrated, prodRequestAwaitingNewExecutive, signIn } from "./helpers";

// Passkeys (issue 25) in Chromium with its virtual authenticator (DevTools protocol): added on
// the account page, then signing in without the password. WebAuthn needs a host name, so these
// run against the second toolkit the test command starts at http://localhost:PORT.
const passkeyBase = process.env.PASSKEY_BASE_URL;
if (!passkeyBase) throw new Error("PASSKEY_BASE_URL is not set: scripts/test.sh starts the passkey server");
test.use({ baseURL: passkeyBase });

/** A platform authenticator for this page (PIN or biometrics always verified). */
async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

test("a passkey is added on the account page, then signs in without the password", async ({ page }) => {
  const { cdp, authenticatorId } = await virtualAuthenticator(page);

  await signIn(page, "executive");
  const headers = { origin: passkeyBase! };
  const suffix = `${Date.now()}`.slice(-9);
  const email = `passkey-${suffix}@demo.nexus`;
  const password = "Fake-E2e-Password-2026!";
  const created = await page.request.post("/api/v1/users", {
    headers,
    data: { email, name: `Pat Passkey ${suffix}`, role: "sales_manager", password },
  });
  expect(created.status(), await created.text()).toBe(201);

  // As the new user: add a passkey on the account page.
  await page.context().clearCookies();
  const login = await page.request.post("/api/v1/auth/login", { headers, data: { email, password } });
  expect(login.status()).toBe(200);
  await page.goto("/account");
  await hydrated(page);
  await page.getByLabel("Name of a new passkey").fill("Test laptop");
  await page.getByTestId("add-passkey").click();
  await expect(page.getByTestId("passkey")).toContainText("Test laptop");
  await expect(page.getByTestId("passkey-recovery-codes").locator("li")).toHaveCount(10);
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(credentials).toHaveLength(1);
  expect(credentials[0].isResidentCredential, "discoverable: it names its user").toBe(true);

  // The password alone is no longer enough (REST says so)…
  const again = await page.request.post("/api/v1/auth/login", { headers, data: { email, password } });
  expect((await again.json()).error.code).toBe("mfa_required");

  // …and the passkey alone signs in: no email, no password.
  await page.context().clearCookies();
  await page.goto("/login?next=/account");
  await hydrated(page);
  await page.getByTestId("passkey-sign-in").click();
  await page.waitForURL((u) => u.pathname === "/account");
  await expect(page.getByTestId("signed-in-as")).toContainText("Sales Manager");
  await expect(page.getByTestId("passkey")).toContainText("last used");
  const { credentials: after } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(after[0].signCount).toBeGreaterThan(0);
});

test("an Executive approving a prod change steps up with a passkey in place", async ({ page, browser }) => {
  const headers = { origin: passkeyBase! };
  const { cdp, authenticatorId } = await virtualAuthenticator(page);
  await signIn(page, "executive");
  // A Rep's prod request waits; the new Executive signs in here with the password alone (no
  // factor yet)…
  const { slot, op, email, password, executive } = await prodRequestAwaitingNewExecutive(page, passkeyBase!, {
    customer: "Passkey Step Co",
    email: "passkey-exec",
    name: "Petra Passkey",
  });

  // …and adds a passkey on another device (its own browser and authenticator). The passkey is
  // then synced to this device's authenticator, as a platform's passkey manager would.
  const other = await browser.newContext({ baseURL: passkeyBase });
  const device = await other.newPage();
  const theirs = await virtualAuthenticator(device);
  const login = await device.request.post("/api/v1/auth/login", { headers, data: { email, password } });
  expect(login.status(), await login.text()).toBe(200);
  await device.goto("/account");
  await hydrated(device);
  await device.getByLabel("Name of a new passkey").fill("Phone");
  await device.getByTestId("add-passkey").click();
  await expect(device.getByTestId("passkey")).toContainText("Phone");
  const { credentials } = await theirs.cdp.send("WebAuthn.getCredentials", { authenticatorId: theirs.authenticatorId });
  expect(credentials).toHaveLength(1);
  await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: credentials[0] });
  await other.close();

  // Approving asks for a fresh factor in place; the passkey gives it and the approval goes on.
  await page.goto("/approvals");
  await hydrated(page);
  const card = page.getByTestId("approval").filter({ hasText: slot.name });
  await card.getByTestId("approve").click();
  const prompt = page.getByTestId("step-up");
  await expect(prompt).toBeVisible();
  expect((await apiGet(page, `/api/v1/operations/${op}`)).state).toBe("awaiting_approval");
  await prompt.getByTestId("step-up-passkey").click();
  await expect(card).toHaveCount(0);
  const approved = await apiGet(page, `/api/v1/operations/${op}`);
  expect(approved.approved_by).toBe(executive);
  expect(["executing", "succeeded"]).toContain(approved.state);
});
