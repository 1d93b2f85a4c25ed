// Registers the service worker, offers "Update available — reload" when a new version waits,
// and, on the page sign-out lands on, forgets everything the browser kept for the user.
// A plain file so a strict CSP needs no inline-script exception.
(function () {
  function forget() {
    try {
      for (const key of Object.keys(localStorage)) {
        if (key.startsWith("nexus.")) localStorage.removeItem(key);
      }
    } catch (_) {}
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage({ type: "clear-caches" });
    } else if (window.caches) {
      caches.keys().then((keys) => keys.forEach((k) => caches.delete(k)));
    }
  }

  if (new URLSearchParams(location.search).has("signed_out")) forget();
  // The app calls this when another user signs in on a device that still holds someone's data
  // (their session expired without a sign-out): app/src/components/device.rs.
  window.nexusForgetDevice = forget;

  function offerUpdate(worker) {
    if (document.getElementById("update-banner")) return;
    const bar = document.createElement("div");
    bar.id = "update-banner";
    bar.className = "update-banner";
    bar.setAttribute("role", "status");
    bar.setAttribute("data-testid", "update-banner");
    const text = document.createElement("span");
    text.textContent = "Update available — ";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.textContent = "reload";
    button.addEventListener("click", () => worker.postMessage({ type: "skip-waiting" }));
    bar.append(text, button);
    document.body.prepend(bar);
  }

  if (!("serviceWorker" in navigator)) return;

  // Pages reached inside the app (no full load) are cached too, so they reopen offline.
  function rememberPage() {
    const worker = navigator.serviceWorker.controller;
    if (worker) worker.postMessage({ type: "cache-page", url: location.pathname + location.search });
  }
  const pushState = history.pushState;
  history.pushState = function (...args) {
    const result = pushState.apply(this, args);
    setTimeout(rememberPage, 0);
    return result;
  };
  window.addEventListener("popstate", rememberPage);

  // After hydration, not at `load` (which now comes before the bundle is even requested): the
  // install caches the bundle and the split chunk, which on a first visit would share a slow
  // link with the page's own bundle; and an update banner must not enter <body> before
  // hydration has walked it. A page that never hydrates (no wasm) registers 10 s after `load`.
  function afterHydration(run) {
    const root = document.documentElement;
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      observer.disconnect();
      run();
    };
    const observer = new MutationObserver(() => {
      if (root.hasAttribute("data-hydrated")) once();
    });
    observer.observe(root, { attributes: true, attributeFilter: ["data-hydrated"] });
    if (root.hasAttribute("data-hydrated")) once();
    window.addEventListener("load", () => setTimeout(once, 10_000));
  }

  afterHydration(() => {
    navigator.serviceWorker
      .register("/sw.js", { scope: "/" })
      .then((registration) => {
        // A first install takes over at once; a new version waits for the user.
        if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
        // Active but not in control of this page: it opened while the first install ran.
        if (registration.active && !navigator.serviceWorker.controller) registration.active.postMessage({ type: "claim" });
        registration.addEventListener("updatefound", () => {
          const worker = registration.installing;
          if (!worker) return;
          worker.addEventListener("statechange", () => {
            if (worker.state === "installed") {
              if (navigator.serviceWorker.controller) offerUpdate(worker);
              else worker.postMessage({ type: "skip-waiting" });
            }
          });
        });
      })
      .catch((err) => console.warn("service worker registration failed", err));
    let reloading = false;
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      // Only after the user chose to update (a first install has no page to reload).
      if (reloading || !document.getElementById("update-banner")) return;
      reloading = true;
      location.reload();
    });
  });
})();
