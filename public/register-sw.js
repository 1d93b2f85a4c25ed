// Registers the service worker; a plain file so a strict CSP needs no inline-script exception.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((err) => {
      console.warn("service worker registration failed", err);
    });
  });
}
