import { expect, test, type Page } from "@playwright/test";
import { apiGet, hydrated } from "./helpers";

// Single sign-on through the hosted UI: authorization code + PKCE + state + nonce, against a real
// OpenID provider (end2end/sso/provider.mjs, npm `oidc-provider`) that the test command starts on
// http://localhost:<port> — another site than the toolkit on 127.0.0.1, as a Cognito domain is.
// Its development login form accepts any login; the login's first part names the groups.

/** From the sign-in page through the provider's login form; answers where the browser ends up. */
async function signInAtProvider(page: Page, login: string, next = "/") {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await hydrated(page);
  await page.getByTestId("sso").click();
  await page.waitForURL((u) => u.hostname === "localhost");
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any password: the provider's development form");
  await page.locator('button[type="submit"]').click();
  await page.waitForURL((u) => u.hostname === "127.0.0.1" && !u.pathname.startsWith("/auth/"));
}

test("SSO: the hosted UI signs a user in with the role their groups give, back where they started", async ({ page, context }) => {
  const login = `manager.sso.${Date.now()}@example.test`;
  await signInAtProvider(page, login, "/approvals");
  await expect(page).toHaveURL(/\/approvals$/);
  await expect(page.getByTestId("signed-in-as")).toContainText("Sales Manager");
  const me = await apiGet(page, "/api/v1/me");
  expect(me.user.email).toBe(login);
  expect(me.user.role).toBe("sales_manager");

  const cookies = await context.cookies();
  // The flow cookie (state, verifier, nonce) is spent; the session cookie is Strict and HttpOnly.
  expect(cookies.find((c) => c.name === "nexus_sso")).toBeUndefined();
  const session = cookies.find((c) => c.name === "nexus_session");
  expect(session?.sameSite).toBe("Strict");
  expect(session?.httpOnly).toBe(true);

  // Signed out, the next SSO sign-in finds the same (linked) user.
  await page.context().clearCookies();
  await signInAtProvider(page, login);
  await expect(page.getByTestId("signed-in-as")).toContainText("Sales Manager");
  expect((await apiGet(page, "/api/v1/me")).user.id).toBe(me.user.id);
});

test("SSO: the authorize request carries state, nonce and an S256 challenge, never the verifier", async ({ page }) => {
  await page.goto("/login");
  await hydrated(page);
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.url().includes("/oauth2/authorize")),
    page.getByTestId("sso").click(),
  ]);
  const url = new URL(request.url());
  expect(url.searchParams.get("response_type")).toBe("code");
  expect(url.searchParams.get("code_challenge_method")).toBe("S256");
  expect(url.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(url.searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(url.searchParams.get("nonce")).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const flow = (await page.context().cookies()).find((c) => c.name === "nexus_sso");
  expect(flow?.sameSite).toBe("Lax");
  expect(flow?.httpOnly).toBe(true);
  const verifier = flow!.value.split(".")[2];
  expect(request.url()).not.toContain(verifier);
});

test("SSO: a callback whose state is not this browser's is refused, and no session opens", async ({ page, browser }) => {
  // Start a real flow here, then come back with a forged state.
  await page.goto("/login");
  await hydrated(page);
  await page.getByTestId("sso").click();
  await page.waitForURL((u) => u.hostname === "localhost");
  await page.goto("/auth/callback?code=forged-code&state=forged-state-of-someone-else");
  await expect(page).toHaveURL(/\/login\?sso_error=state/);
  await expect(page.getByTestId("sso-error")).toContainText("expired or was started elsewhere");
  expect((await page.context().cookies()).find((c) => c.name === "nexus_session")).toBeUndefined();

  // Login CSRF: a victim's browser (no flow cookie) sent to an attacker's callback URL.
  const victim = await browser.newPage();
  await victim.goto(`${test.info().project.use.baseURL}/auth/callback?code=attackers-code&state=attackers-state`);
  await expect(victim).toHaveURL(/sso_error=state/);
  expect((await victim.context().cookies()).find((c) => c.name === "nexus_session")).toBeUndefined();
  await victim.close();
});

test("SSO: a user whose groups give no role is refused with the reason", async ({ page }) => {
  await signInAtProvider(page, `nogroup.${Date.now()}@example.test`);
  await expect(page).toHaveURL(/\/login\?sso_error=no_role/);
  await expect(page.getByTestId("sso-error")).toContainText("no role in the toolkit");
  expect((await page.context().cookies()).find((c) => c.name === "nexus_session")).toBeUndefined();
});
