// Threads on a static host. A thread pool in the browser needs a cross-origin-isolated page,
// which a server grants with two headers (COOP: same-origin, COEP: require-corp) that a
// static host such as GitHub Pages cannot send. This service worker adds them to the page's
// own same-origin responses (and CORP, so the isolated page may load them); cross-origin
// requests (the hub's downloads, which are CORS) pass untouched. It controls the page from the
// next visit on: the first visit runs on one thread, never reloads itself, and a browser
// without service workers keeps the single-thread path (main.js registers it).
self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (new URL(request.url).origin !== self.location.origin) return;
  // a request the worker may not make again this way (Chromium's devtools quirk)
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  event.respondWith(
    fetch(request).then((response) => {
      if (response.type === "opaque" || response.status === 0) return response;
      const headers = new Headers(response.headers);
      headers.set("Cross-Origin-Opener-Policy", "same-origin");
      headers.set("Cross-Origin-Embedder-Policy", "require-corp");
      headers.set("Cross-Origin-Resource-Policy", "same-origin");
      return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
    }),
  );
});
