// NexusAI Toolkit service worker: the app shell and last-known reads, for use without a network.
//
// - install: precache the sign-in page, the offline page, the manifest and icons, and every
//   hashed /pkg asset the sign-in page references (hash-files makes those names change with each
//   build), with the split wasm chunks its scripts load. Nothing of a user's data is cached at
//   install.
// - /pkg/*: cache first (names are content hashes, so a cached file is never stale).
// - pages and GET reads (/sfn/*, /api/v1/*): network first with a short timeout, cached copy
//   when the network fails or is slow; the offline page for pages never visited. Redirects
//   (to sign-in) and errors are never cached. Event streams pass through untouched.
// - a new version waits until the page asks it to take over ("Update available — reload").
// - pages reached inside the app (history.pushState) are fetched and cached when the page asks.
// - sign-out: the page asks for every cache to be dropped.
const VERSION = "v2";
const SHELL_CACHE = `nexus-shell-${VERSION}`;
const DATA_CACHE = `nexus-data-${VERSION}`;
const NETWORK_TIMEOUT_MS = 3000;
const SHELL_URLS = [
  "/login",
  "/offline.html",
  "/manifest.webmanifest",
  "/register-sw.js",
  "/icons/icon-192.png",
  "/icons/icon-512.png",
];

async function precacheShell() {
  const cache = await caches.open(SHELL_CACHE);
  await cache.addAll(SHELL_URLS);
  // The hashed bundle names are only known from the page that references them.
  const page = await cache.match("/login");
  const html = page ? await page.text() : "";
  const assets = [...new Set([...html.matchAll(/\/pkg\/[A-Za-z0-9._-]+/g)].map((m) => m[0]))];
  await cache.addAll(assets);
  await precacheImports(cache, assets.filter((url) => url.endsWith(".js")));
}

// The pages split into a wasm chunk of their own (app/src/app.rs `Occasional`) are named only
// inside the scripts: the main script imports the split loader (`"./__wasm_split.<hash>.js"`),
// which fetches each chunk (`"./split_<name>.<hash>.wasm"`). Follow those references so the
// chunks are cached now, and those pages open offline even if they were never visited.
async function precacheImports(cache, scripts) {
  const seen = new Set(scripts);
  const queue = [...scripts];
  while (queue.length > 0) {
    const script = queue.shift();
    const response = await cache.match(script);
    if (!response) continue;
    const text = await response.text();
    for (const m of text.matchAll(/["']\.\/(__wasm_split\.[A-Za-z0-9_-]+\.js|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.wasm)["']/g)) {
      const url = new URL(m[1], new URL(script, self.location.origin)).pathname;
      if (seen.has(url)) continue;
      seen.add(url);
      try {
        await cache.add(url);
        if (url.endsWith(".js")) queue.push(url);
      } catch (err) {
        // One missing chunk must not cost the whole offline shell: that page loads it online.
        console.warn("service worker: not cached", url, err);
      }
    }
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(precacheShell());
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const keep = new Set([SHELL_CACHE, DATA_CACHE]);
      for (const key of await caches.keys()) {
        if (!keep.has(key)) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  const type = event.data && event.data.type;
  if (type === "skip-waiting") {
    self.skipWaiting();
  } else if (type === "claim") {
    // A page that opened while the first install was under way (a navigation right after the
    // page that registered) was no client yet when `activate` claimed them.
    event.waitUntil(self.clients.claim());
  } else if (type === "cache-page") {
    const url = new URL(event.data.url, self.location.origin);
    if (url.origin !== self.location.origin || neverCached(url.pathname)) return;
    event.waitUntil(
      (async () => {
        try {
          const response = await fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } });
          if (response.ok && !response.redirected) await (await caches.open(SHELL_CACHE)).put(url, response);
        } catch (_) {
          // Offline: nothing to remember.
        }
      })(),
    );
  } else if (type === "clear-caches") {
    // Sign-out: nothing of the user's data may stay on the device; the shell comes back.
    event.waitUntil(
      (async () => {
        for (const key of await caches.keys()) await caches.delete(key);
        await precacheShell();
      })(),
    );
  }
});

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

async function networkFirst(request, cacheName, fallbackUrl) {
  try {
    const response = await withTimeout(fetch(request), NETWORK_TIMEOUT_MS);
    if (response.ok && !response.redirected) {
      const cache = await caches.open(cacheName);
      await cache.put(request, response.clone());
    }
    return response;
  } catch (err) {
    const cached = await caches.match(request);
    if (cached) return cached;
    if (fallbackUrl) {
      const fallback = await caches.match(fallbackUrl);
      if (fallback) return fallback;
    }
    throw err;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(SHELL_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

// Nothing of the second factor is ever kept: the account page and the factor's reads go to the
// network only (its server functions are POSTs, which are never cached anyway).
function neverCached(path) {
  return path === "/account" || path.startsWith("/api/v1/me/mfa") || path.startsWith("/sfn/mfa-");
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (neverCached(url.pathname)) {
    if (request.mode === "navigate") {
      event.respondWith(fetch(request).catch(() => caches.match("/offline.html")));
    }
    return;
  }
  if ((request.headers.get("accept") || "").includes("text/event-stream")) return;

  if (url.pathname.startsWith("/pkg/")) {
    event.respondWith(cacheFirst(request));
  } else if (url.pathname.startsWith("/sfn/") || url.pathname.startsWith("/api/v1/")) {
    event.respondWith(networkFirst(request, DATA_CACHE));
  } else if (request.mode === "navigate") {
    event.respondWith(networkFirst(request, SHELL_CACHE, "/offline.html"));
  }
});
