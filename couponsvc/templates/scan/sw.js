/* The scanner page's service worker: the page and its files from the cache when the
 * network is gone or slow (couponsvc/scan/app_shell.py). Version {{ version }}. */
"use strict";
var CACHE = "couponsvc-scan-{{ version }}";
var PAGE = {{ page|tojson }};
var FILES = {{ files|tojson }};
var PAGE_WAIT_MS = 3000;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(FILES);
  }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) {
      return name.indexOf("couponsvc-scan-") === 0 && name !== CACHE;
    }).map(function (name) {
      return caches.delete(name);
    }));
  }).then(function () {
    return self.clients.claim();
  }));
});

function cachedPage() {
  return caches.open(CACHE).then(function (cache) {
    return cache.match(PAGE, { ignoreSearch: true });
  });
}

/* The page from the network within PAGE_WAIT_MS (kept for next time), else the cached one. */
function page(request) {
  return new Promise(function (resolve) {
    var settled = false;
    function give(response) {
      if (!settled && response) {
        settled = true;
        resolve(response);
      }
    }
    var timer = setTimeout(function () {
      cachedPage().then(give);
    }, PAGE_WAIT_MS);
    fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { return cache.put(PAGE, copy); });
      }
      clearTimeout(timer);
      give(response);
    }, function () {
      clearTimeout(timer);
      cachedPage().then(function (cached) {
        give(cached || Response.error());
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") {
    return;
  }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.indexOf("/api/") === 0) {
    return; // the API is always asked, never answered from a cache
  }
  if (request.mode === "navigate") {
    if (url.pathname === PAGE || url.pathname === PAGE + "/") {
      event.respondWith(page(request));
    }
    return;
  }
  event.respondWith(caches.open(CACHE).then(function (cache) {
    return cache.match(request).then(function (hit) {
      return hit || fetch(request);
    });
  }));
});
