import { createHmac } from "node:crypto";
import { expect, test } from "@playwright/test";
import { apiGet, hydrated, prodRequestAwaitingNewExecutive, signIn } from "./helpers";

// A second factor (issue 25): an authenticator app set up for a fresh user, then the sign-in
// form asks for its code. The test computes the codes itself (RFC 6238, SHA-1, 6 digits, 30 s).

function fromBase32(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret: Buffer, unixSeconds: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac("sha1", secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, "0");
}

test("an authenticator app is set up on the account page, then asked for at sign-in; nothing of it is cached", async ({ page, baseURL }) => {
  await signIn(page, "executive");
  const headers = { origin: baseURL! };
  const suffix = `${Date.now()}`.slice(-9);
  const email = `totp-${suffix}@demo.nexus`;
  const password = "Fake-E2e-Password-2026!";
  const created = await page.request.post("/api/v1/users", {
    headers,
    data: { email, name: `Tess Totp ${suffix}`, role: "sales_manager", password },
  });
  expect(created.status(), await created.text()).toBe(201);

  // As the new user: the account page sets up the app (the test is the app).
  const login = await page.request.post("/api/v1/auth/login", { headers, data: { email, password } });
  expect(login.status()).toBe(200);
  await page.goto("/account");
  await hydrated(page);
  await expect(page.getByTestId("mfa-off")).toBeVisible();
  await page.getByTestId("start-totp").click();
  await expect(page.getByTestId("enrolment").locator("svg")).toBeVisible();
  const secret = fromBase32((await page.getByTestId("totp-secret").textContent())!.trim());
  const now = Date.now() / 1000;
  await page.getByLabel("Code shown by the app").fill(totp(secret, now));
  await page.getByTestId("confirm-totp").click();
  await expect(page.getByTestId("recovery-codes").locator("li")).toHaveCount(10);
  await expect(page.getByTestId("mfa-on")).toContainText("10 recovery codes left");

  // The service worker kept nothing of it.
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, undefined, { timeout: 15_000 });
  const cached = await page.evaluate(async () => {
    const urls: string[] = [];
    for (const name of await caches.keys()) {
      for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
    }
    return urls;
  });
  expect(cached.filter((u) => u.includes("/account") || u.includes("mfa"))).toEqual([]);

  // Signing in through the form: the password alone is answered with a request for the code.
  await page.context().clearCookies();
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("sign-in-error")).toContainText("authenticator app");
  // The next step's code (the current one was used to confirm).
  await page.getByLabel(/Authenticator code/).fill(totp(secret, now + 30));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname === "/");
  await expect(page.getByTestId("signed-in-as")).toContainText("Sales Manager");
  await hydrated(page);

  // A lost phone: an Executive resets the factor on the Users page; the password alone signs in
  // again (and must set one up again to have one).
  await signIn(page, "executive");
  await page.goto("/users");
  await hydrated(page);
  await page.getByTestId("user-row").filter({ hasText: email }).getByTestId("reset-mfa").click();
  await expect(page.getByText("Second factor removed")).toBeVisible();
  const again = await page.request.post("/api/v1/auth/login", { headers, data: { email, password } });
  expect(again.status(), await again.text()).toBe(200);
});

test("an Executive approving a prod change is asked for a fresh second factor in place, then it goes through", async ({ page, baseURL, playwright }) => {
  const headers = { origin: baseURL! };
  await signIn(page, "executive");
  // A Rep's prod request waits; the new Executive signs in here with the password (no factor
  // yet), then sets up an authenticator app from another device: this session has not proved it.
  const { slot, op, email, password, executive } = await prodRequestAwaitingNewExecutive(page, baseURL!, {
    customer: "Step Up Co",
    email: "stepup",
    name: "Stella Stepup",
  });
  const device = await playwright.request.newContext({ baseURL, extraHTTPHeaders: headers });
  const login = await device.post("/api/v1/auth/login", { data: { email, password } });
  expect(login.status(), await login.text()).toBe(200);
  const auth = { authorization: `Bearer ${(await login.json()).token}` };
  const start = await device.post("/api/v1/me/mfa/totp", { headers: auth, data: {} });
  expect(start.status(), await start.text()).toBe(200);
  const secret = fromBase32((await start.json()).secret);
  const confirmed = await device.post("/api/v1/me/mfa/totp/confirm", { headers: auth, data: { code: totp(secret, Date.now() / 1000) } });
  expect(confirmed.status(), await confirmed.text()).toBe(200);
  await device.dispose();

  // Approving asks for a code in place; with it, the same approval goes through.
  await page.goto("/approvals");
  await hydrated(page);
  const card = page.getByTestId("approval").filter({ hasText: slot.name });
  await card.getByTestId("approve").click();
  const prompt = page.getByTestId("step-up");
  await expect(prompt).toBeVisible();
  expect((await apiGet(page, `/api/v1/operations/${op}`)).state).toBe("awaiting_approval");
  await prompt.getByLabel(/fresh second factor/).fill(totp(secret, Date.now() / 1000 + 30));
  await prompt.getByRole("button", { name: "Continue" }).click();
  await expect(card).toHaveCount(0);
  const approved = await apiGet(page, `/api/v1/operations/${op}`);
  expect(approved.approved_by).toBe(executive);
  expect(["executing", "succeeded"]).toContain(approved.state);
});
