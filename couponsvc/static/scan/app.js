/* The scanner page: sign in, choose the store once, scan, answer big and at once.
 *
 * Screens: sign-in → (store, for a key not pinned to one) → scanner. The answer is one
 * element with role="status" whose data-outcome is redeemed, refused, queued or reversed,
 * and data-code the API's reason code when refused. The decisions are till.js's; this file
 * draws them, talks HTTP, and keeps the device's state in store.js. Words come from the
 * page (a JSON block rendered with the server's catalogue). ES2019, no modules.
 */
(function () {
  "use strict";

  var strings = JSON.parse(document.getElementById("scan-strings").textContent);
  var settings = JSON.parse(document.getElementById("scan-settings").textContent);
  var SYNC_EVERY_MS = 30000;
  var REQUEST_MS = 4000;
  var BATCH_MS = 20000;

  var storage = null;
  var till = null;
  var camera = null;
  var key = null;
  var context = null;
  var storeId = null;
  var deviceId = null;
  var busy = false;
  var shown = null; // the outcome on screen (its reverse button needs it)
  var countdown = null;
  var syncing = null;
  var timings = [];

  function $(id) {
    return document.getElementById(id);
  }

  function say(text, values) {
    return String(text).replace(/%\((\w+)\)s/g, function (match, name) {
      return values && values[name] !== undefined ? values[name] : match;
    });
  }

  /* A plural from the page's words ({one, other}), filled with `count`. */
  function sayN(forms, count) {
    return say(count === 1 ? forms.one : forms.other, { num: count });
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function randomId(prefix) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return prefix + CouponQr.b64urlEncode(bytes);
  }

  function clockTime(ms) {
    var date = new Date(ms);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds());
  }

  // --- HTTP ---------------------------------------------------------------------------

  function call(method, path, body, idempotencyKey, timeoutMs, withKey) {
    var headers = { "Accept": "application/json", "Accept-Language": settings.language };
    var bearer = withKey || key;
    if (bearer) {
      headers.Authorization = "Bearer " + bearer;
    }
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (idempotencyKey) {
      headers["Idempotency-Key"] = idempotencyKey;
    }
    var abort = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () {
      if (abort) {
        abort.abort();
      }
    }, timeoutMs || REQUEST_MS);
    return fetch(settings.api + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal: abort ? abort.signal : undefined
    }).then(function (response) {
      return response.text().then(function (text) {
        var parsed = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch (error) {
          parsed = null;
        }
        return { status: response.status, body: parsed };
      });
    })["finally"](function () {
      clearTimeout(timer);
    });
  }

  var api = {
    redeem: function (body, idempotencyKey) {
      return call("POST", "/redemptions", body, idempotencyKey);
    },
    validate: function (body) {
      return call("POST", "/redemptions/validate", body);
    },
    reverse: function (id, body, idempotencyKey) {
      return call("POST", "/redemptions/" + encodeURIComponent(id) + "/reverse", body, idempotencyKey);
    },
    batch: function (body, idempotencyKey) {
      return call("POST", "/redemptions/batch", body, idempotencyKey, BATCH_MS);
    },
    qrKeys: function () {
      return call("GET", "/qr-keys");
    },
    revocations: function (after, limit) {
      return call("GET", "/revocations?limit=" + limit + (after ? "&after=" + encodeURIComponent(after) : ""));
    },
    whoami: function (withKey) {
      return call("GET", "/whoami", undefined, null, REQUEST_MS, withKey);
    }
  };

  // --- Ed25519 for offline checks: WebCrypto, else the vendored @noble/ed25519 ------------

  function loadNoble() {
    if (self.CouponNoble) {
      return Promise.resolve(self.CouponNoble);
    }
    return new Promise(function (resolve) {
      var timer = setTimeout(function () { resolve(null); }, 8000);
      self.addEventListener("coupon-noble", function () {
        clearTimeout(timer);
        resolve(self.CouponNoble || null);
      }, { once: true });
      var script = document.createElement("script");
      script.type = "module";
      script.textContent = "import * as ed from " + JSON.stringify(settings.noble) +
        "; self.CouponNoble = ed; self.dispatchEvent(new Event('coupon-noble'));";
      script.onerror = function () { resolve(null); };
      document.head.appendChild(script);
    });
  }

  function chooseVerifier() {
    var subtle = self.crypto && self.crypto.subtle;
    return CouponQr.chooseVerifier(subtle, loadNoble);
  }

  // --- screens ------------------------------------------------------------------------

  function screen(name) {
    show("signin", name === "signin");
    show("stores", name === "stores");
    show("scanner", name === "scanner");
    document.body.setAttribute("data-screen", name);
  }

  function showSignIn(message) {
    screen("signin");
    $("signin-error").textContent = message || "";
    show("signin-error", !!message);
    $("key").focus();
  }

  function signIn(event) {
    event.preventDefault();
    var typed = $("key").value.trim();
    if (!typed) {
      showSignIn(strings.key_refused);
      return;
    }
    $("signin-submit").disabled = true;
    $("signin-error").textContent = strings.key_checking;
    show("signin-error", true);
    api.whoami(typed).then(function (answer) {
      if (answer.status === 200 && answer.body && answer.body.merchant) {
        key = typed;
        context = answer.body;
        $("key").value = "";
        return Promise.all([storage.set("key", key), storage.set("context", context)]).then(enter);
      }
      showSignIn(answer.status === 200 ? strings.key_platform : strings.key_refused);
    }, function () {
      showSignIn(strings.key_offline);
    }).then(function () {
      $("signin-submit").disabled = false;
    });
  }

  function enter() {
    if (context.store) {
      storeId = context.store.id;
    } else if (!storeId && context.stores.length === 1) {
      storeId = context.stores[0].id;
    }
    var known = context.stores.some(function (store) { return store.id === storeId; });
    if (!storeId || !known) {
      return showStores();
    }
    return storage.set("storeId", storeId).then(startScanning);
  }

  function showStores() {
    screen("stores");
    var list = $("store-list");
    list.textContent = "";
    context.stores.forEach(function (store) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "big";
      button.textContent = store.name;
      if (store.address) {
        var address = document.createElement("small");
        address.textContent = store.address;
        button.appendChild(address);
      }
      button.addEventListener("click", function () {
        storeId = store.id;
        storage.set("storeId", storeId).then(startScanning);
      });
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  function storeName() {
    for (var i = 0; i < context.stores.length; i++) {
      if (context.stores[i].id === storeId) {
        return context.stores[i].name;
      }
    }
    return "";
  }

  function startScanning() {
    screen("scanner");
    $("where").textContent = (context.merchant ? context.merchant.name + " · " : "") + storeName();
    till = CouponTill.create({
      api: api, storage: storage, context: context, storeId: storeId, deviceId: deviceId,
      newId: function () { return randomId(""); },
      online: function () { return navigator.onLine !== false; },
      verifier: chooseVerifier
    });
    till.ensureVerifier();
    network();
    startCamera();
    refreshQueue();
    syncAndUpload();
    $("code").focus({ preventScroll: true });
  }

  function startCamera() {
    if (camera) {
      return;
    }
    $("camera-state").textContent = strings.camera_starting;
    CouponCamera.start(self, $("video"), { wasm: settings.wasm, onText: onText }).then(function (started) {
      camera = started;
      $("camera-state").textContent = strings.camera_ready;
      document.body.setAttribute("data-decoder", started.decoder);
    }, function () {
      $("camera-state").textContent = strings.camera_failed;
      document.body.setAttribute("data-decoder", "none");
      show("viewfinder", false);
    });
  }

  function signOut() {
    storage.queued().then(function (items) {
      var waiting = items.filter(function (item) { return item.state === "waiting"; }).length;
      if (waiting && !confirm(sayN(strings.sign_out_waiting, waiting))) {
        return;
      }
      if (camera) {
        camera.stop();
        camera = null;
      }
      key = null;
      context = null;
      storeId = null;
      till = null;
      return storage.clearSession().then(function () { showSignIn(""); });
    });
  }

  // --- scanning -----------------------------------------------------------------------

  function onText(text, grabbedAt) {
    var now = performance.now();
    if (!till || busy || !$("uses").hidden) {
      if (till && text === till.debouncer.text) {
        till.debouncer.isRepeat(text, now); // still in view: keep it a repeat
      }
      return;
    }
    if (till.debouncer.isRepeat(text, now)) {
      return;
    }
    var timing = { grabbedAt: grabbedAt, decodedAt: now, answeredAt: null, outcome: null, online: navigator.onLine };
    timings.push(timing);
    act(till.prepareQr(text), timing);
  }

  function typed(event) {
    event.preventDefault();
    var raw = $("code").value;
    if (!raw.trim() || busy || !till) {
      return;
    }
    busy = true;
    checking();
    till.prepareCode(raw).then(function (prepared) {
      busy = false;
      if (!prepared.refusal) {
        $("code").value = "";
      }
      if (CouponCodes.isValid(raw)) {
        prepared.display = CouponCodes.display(raw);
      }
      act(prepared, null);
    }, function () {
      busy = false;
      answer({ outcome: "refused", reason: "network_error", source: "device" }, null);
    });
  }

  function act(prepared, timing) {
    if (prepared.refusal) {
      if (prepared.display && !prepared.refusal.display) {
        prepared.refusal.display = prepared.display;
      }
      answer(prepared.refusal, timing);
      return;
    }
    if (prepared.askUses) {
      askUses(prepared, timing);
      return;
    }
    redeem(prepared.scan, 1, timing, prepared.display);
  }

  function redeem(scanned, uses, timing, display) {
    busy = true;
    checking();
    till.redeem(scanned, uses).then(function (outcome) {
      if (display && !outcome.display) {
        outcome.display = display;
      }
      answer(outcome, timing);
    }, function () {
      answer({ outcome: "refused", reason: "network_error", source: "device" }, timing);
    }).then(function () {
      busy = false;
      refreshQueue();
    });
  }

  function askUses(prepared, timing) {
    var box = $("uses");
    var result = $("result");
    result.className = "result asking";
    result.setAttribute("data-outcome", "asking");
    result.removeAttribute("data-code");
    $("result-heading").textContent = strings.ask_uses;
    $("result-title").textContent = prepared.deal ? prepared.deal.title : "";
    ["result-detail", "result-uses"].forEach(function (id) { $(id).textContent = ""; });
    show("reverse", false);
    var count = $("uses-count");
    count.value = "1";
    count.max = String(prepared.maxUses);
    $("uses-max").textContent = say(strings.uses_at_most, { max: prepared.maxUses });
    show("uses", true);
    $("uses-go").onclick = function () {
      var n = Math.max(1, Math.min(prepared.maxUses, parseInt(count.value, 10) || 1));
      show("uses", false);
      redeem(prepared.scan, n, timing, prepared.display);
    };
    $("uses-cancel").onclick = function () {
      show("uses", false);
      till.debouncer.forget();
      answer({ outcome: "idle" }, null);
    };
    box.scrollIntoView({ block: "nearest" });
    $("uses-go").focus();
  }

  function stepUses(delta) {
    var count = $("uses-count");
    var n = (parseInt(count.value, 10) || 1) + delta;
    count.value = String(Math.max(1, Math.min(parseInt(count.max, 10) || 1, n)));
  }

  function checking() {
    var result = $("result");
    result.className = "result checking";
    result.setAttribute("data-outcome", "checking");
    result.removeAttribute("data-code");
    $("result-heading").textContent = strings.checking;
    ["result-title", "result-detail", "result-uses"].forEach(function (id) { $(id).textContent = ""; });
    show("reverse", false);
  }

  function refusalDetail(outcome) {
    if (outcome.detail) {
      return outcome.detail;
    }
    var details = strings.device_detail;
    if (outcome.reason === "invalid_qr" && outcome.qrReason) {
      return details["qr_" + outcome.qrReason] || "";
    }
    if (outcome.reason === "invalid_code" && outcome.codeReason) {
      return details["code_" + outcome.codeReason] || "";
    }
    return outcome.source === "device" ? details[outcome.reason] || "" : "";
  }

  function answer(outcome, timing) {
    var result = $("result");
    shown = outcome;
    clearInterval(countdown);
    result.className = "result " + outcome.outcome;
    result.setAttribute("data-outcome", outcome.outcome);
    if (outcome.outcome === "refused") {
      result.setAttribute("data-code", outcome.reason);
    } else {
      result.removeAttribute("data-code");
    }
    var heading = "";
    var detail = "";
    var uses = "";
    if (outcome.outcome === "redeemed") {
      heading = strings.redeemed;
      uses = outcome.usesTotal > 1 ? say(strings.uses_left, { left: outcome.usesLeft, total: outcome.usesTotal }) : "";
      detail = outcome.display || "";
    } else if (outcome.outcome === "queued") {
      heading = strings.queued;
      detail = (outcome.display ? outcome.display + " · " : "") + strings.queued_detail;
      uses = outcome.uses > 1 ? say(strings.uses_taken, { uses: outcome.uses }) : "";
    } else if (outcome.outcome === "idle") {
      heading = strings.ready;
    } else if (outcome.outcome === "reversed") {
      heading = strings.reversed;
      detail = outcome.display || "";
    } else {
      heading = strings.reason[outcome.reason] || strings.reason.other;
      detail = refusalDetail(outcome);
      if (detail === heading || (outcome.problem && detail === outcome.problem.title && outcome.source !== "device")) {
        detail = ""; // the server's title says what the heading says
      }
      if (outcome.display && detail.indexOf(outcome.display) < 0) {
        detail = outcome.display + (detail ? " · " + detail : "");
      }
    }
    $("result-heading").textContent = heading;
    $("result-title").textContent = outcome.title || "";
    $("result-detail").textContent = detail;
    $("result-uses").textContent = uses;
    reverseButton(outcome);
    if (timing) {
      timing.answeredAt = performance.now();
      timing.outcome = outcome.outcome;
    }
    if (navigator.vibrate) {
      try {
        navigator.vibrate(outcome.outcome === "refused" ? [120, 80, 120] : 60);
      } catch (error) {
        // some WebViews refuse vibration without a gesture
      }
    }
    if (outcome.reason === "unauthenticated") {
      $("key-problem").hidden = false;
    }
  }

  function reverseButton(outcome) {
    var button = $("reverse");
    if (outcome.outcome !== "redeemed" || !outcome.reversibleUntil || outcome.reversibleUntil <= Date.now()) {
      show("reverse", false);
      return;
    }
    function tick() {
      var left = Math.max(0, Math.ceil((outcome.reversibleUntil - Date.now()) / 1000));
      if (!left) {
        clearInterval(countdown);
        show("reverse", false);
        return;
      }
      var seconds = left % 60;
      button.textContent = say(strings.reverse_left, {
        time: Math.floor(left / 60) + ":" + (seconds < 10 ? "0" : "") + seconds
      });
    }
    tick();
    show("reverse", true);
    countdown = setInterval(tick, 1000);
  }

  function reverse() {
    var outcome = shown;
    if (!outcome || outcome.outcome !== "redeemed" || busy) {
      return;
    }
    busy = true;
    $("reverse").disabled = true;
    till.reverse(outcome, strings.reverse_reason).then(function (done) {
      answer(done, null);
    }).then(function () {
      busy = false;
      $("reverse").disabled = false;
      till.debouncer.forget();
    });
  }

  // --- network, sync, upload ------------------------------------------------------------

  function network() {
    var online = navigator.onLine !== false;
    var pill = $("network");
    pill.textContent = online ? strings.online : strings.offline;
    pill.className = "pill " + (online ? "online" : "offline");
    show("offline-note", !online);
    document.body.setAttribute("data-online", online ? "1" : "0");
  }

  function syncAndUpload() {
    if (!till || navigator.onLine === false) {
      return Promise.resolve();
    }
    if (syncing) {
      return syncing;
    }
    syncing = till.sync().then(function (done) {
      if (done.unauthenticated) {
        $("key-problem").hidden = false;
      }
      if (done.context) {
        context = till.state.context;
      }
      if (done.keys) {
        $("synced").textContent = say(strings.synced, { time: clockTime(Date.now()) });
      }
      return till.upload();
    }).then(function (changed) {
      if (changed && changed.length) {
        refreshQueue();
        changed.forEach(settled);
      }
      return ready();
    })["catch"](function () {
      return null;
    }).then(function () {
      syncing = null;
    });
    return syncing;
  }

  /* The amber answer still on screen turns green or red once its upload is answered. */
  function settled(item) {
    if (!shown || shown.outcome !== "queued" || shown.nonce !== item.nonce || item.state === "waiting") {
      return;
    }
    var base = { code: item.code, display: shown.display, title: shown.title, uses: item.uses };
    if (item.state === "accepted") {
      answer(Object.assign(base, { outcome: "redeemed", usesTotal: 0 }), null);
    } else if (item.state === "conflict" || item.state === "rejected") {
      answer(Object.assign(base, { outcome: "refused", reason: item.reason || "coupon_already_redeemed",
        detail: item.detail || strings.upload[item.state], source: "server" }), null);
    }
  }

  function ready() {
    if (!("serviceWorker" in navigator)) {
      document.body.setAttribute("data-offline-ready", "no-service-worker");
      return null;
    }
    return navigator.serviceWorker.ready.then(function () {
      return storage.get("qrKeys");
    }).then(function (keys) {
      if (keys && keys.length) {
        document.body.setAttribute("data-offline-ready", "1");
      }
    });
  }

  function refreshQueue() {
    return storage.queued().then(function (items) {
      var waiting = items.filter(function (item) { return item.state === "waiting"; });
      var troubled = items.filter(function (item) {
        return (item.state === "conflict" || item.state === "rejected") && !item.seen;
      });
      $("waiting").textContent = waiting.length ? sayN(strings.waiting, waiting.length) : "";
      document.body.setAttribute("data-waiting", String(waiting.length));
      $("conflicts").textContent = troubled.length ? sayN(strings.conflict_banner, troubled.length) : "";
      show("conflicts", troubled.length > 0);
      var list = $("queue-list");
      list.textContent = "";
      items.slice(-20).reverse().forEach(function (item) {
        var row = document.createElement("li");
        row.className = "queue-item " + item.state;
        row.setAttribute("data-state", item.state);
        row.setAttribute("data-nonce", item.nonce);
        var label = document.createElement("strong");
        label.textContent = strings.upload[item.state] || item.state;
        var code = document.createElement("span");
        code.textContent = CouponCodes.display(item.code) + " · " + clockTime(Date.parse(item.scanned_at));
        row.appendChild(label);
        row.appendChild(code);
        if (item.reason || item.detail) {
          var why = document.createElement("small");
          why.textContent = item.detail || strings.reason[item.reason] || item.reason;
          row.appendChild(why);
        }
        list.appendChild(row);
      });
      show("queue", items.length > 0);
    });
  }

  /* The staff saw the refused uploads: the banner goes, the rows stay in the list. */
  function acknowledge() {
    storage.queued().then(function (items) {
      return Promise.all(items.filter(function (item) {
        return item.state === "conflict" || item.state === "rejected";
      }).map(function (item) {
        item.seen = true;
        return storage.putQueued(item);
      }));
    }).then(refreshQueue);
  }

  // --- start ----------------------------------------------------------------------------

  function boot() {
    $("signin-form").addEventListener("submit", signIn);
    $("code-form").addEventListener("submit", typed);
    $("reverse").addEventListener("click", reverse);
    $("sign-out").addEventListener("click", signOut);
    $("uses-fewer").addEventListener("click", function () { stepUses(-1); });
    $("uses-more").addEventListener("click", function () { stepUses(1); });
    $("conflicts").addEventListener("click", acknowledge);
    self.addEventListener("online", function () {
      network();
      syncAndUpload();
    });
    self.addEventListener("offline", network);
    setInterval(syncAndUpload, SYNC_EVERY_MS);
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register(settings.serviceWorker, { scope: settings.scope })["catch"](function () {});
    }
    return CouponStore.open(self).then(function (opened) {
      storage = opened;
      document.body.setAttribute("data-storage", opened.kind);
      return Promise.all([storage.get("deviceId"), storage.get("key"), storage.get("context"), storage.get("storeId")]);
    }).then(function (found) {
      deviceId = found[0];
      if (!deviceId) {
        deviceId = randomId("dev_");
        storage.set("deviceId", deviceId);
      }
      key = found[1] || null;
      context = found[2] || null;
      storeId = found[3] || null;
      if (key && context) {
        return enter();
      }
      showSignIn("");
    });
  }

  // For tests and for a person at the console: what the page measured and decided.
  self.couponScan = {
    timings: timings,
    handleText: function (text) { onText(text, performance.now()); },
    syncAndUpload: syncAndUpload,
    till: function () { return till; }
  };

  boot();
})();
