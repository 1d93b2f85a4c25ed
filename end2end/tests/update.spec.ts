import { expect, test } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { hydrated, signIn } from "./helpers";

// A deploy ships a changed service worker: the new one installs and waits (the open page keeps
// running on the old one), the page offers "Update available — reload", and choosing it activates
// the new worker and reloads the page under it. The test "deploys" by rewriting sw.js (and the
// precompressed copies the server prefers) in the site root the server reads, then restores it.
test("a new service worker waits until the user chooses to reload into it", async ({ page }) => {
  const root = process.env.LEPTOS_SITE_ROOT;
  test.skip(!root, "needs LEPTOS_SITE_ROOT (the test command sets it) to ship a new service worker");
  const files = ["sw.js", "sw.js.br", "sw.js.gz"].map((f) => path.join(root!, f));
  const originals = files.map((f) => (fs.existsSync(f) ? fs.readFileSync(f) : null));

  await signIn(page, "rep");
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  const firstWorker = await page.evaluate(async () => {
    const registration = await navigator.serviceWorker.getRegistration();
    return registration!.active!.scriptURL;
  });
  expect(firstWorker).toContain("/sw.js");

  try {
    const next = Buffer.concat([originals[0]!, Buffer.from(`\n// deployed ${Date.now()}\n`)]);
    fs.writeFileSync(files[0], next);
    if (originals[1]) fs.writeFileSync(files[1], zlib.brotliCompressSync(next));
    if (originals[2]) fs.writeFileSync(files[2], zlib.gzipSync(next));

    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
    const banner = page.getByTestId("update-banner");
    await expect(banner).toBeVisible();
    await expect(banner).toContainText("Update available");
    // Waiting, not in charge: the page still runs under the worker it loaded with.
    expect(await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.waiting !== null)).toBe(true);

    await Promise.all([page.waitForEvent("load"), banner.getByRole("button", { name: "reload" }).click()]);
    await hydrated(page);
    await expect(page.getByTestId("update-banner")).toHaveCount(0);
    const after = await page.evaluate(async () => {
      const registration = await navigator.serviceWorker.getRegistration();
      return { waiting: registration!.waiting !== null, controlled: navigator.serviceWorker.controller !== null };
    });
    expect(after).toEqual({ waiting: false, controlled: true });
    await expect(page.getByTestId("signed-in-as")).toContainText("Rep");
  } finally {
    files.forEach((f, i) => {
      if (originals[i]) fs.writeFileSync(f, originals[i]!);
    });
  }
});
