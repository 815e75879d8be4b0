/* What the till decides, without the page: a scan in, an outcome out.
 *
 * Online a scan is redeemed by the server (POST /api/v1/redemptions, with an Idempotency-Key
 * that a retry reuses). Offline, or when the network fails, a scanned QR is verified on the
 * device (signature, expiry, revocations, the deal's tipping, validity and stores, the uses
 * this device already took) and queued with its own nonce, the time it was scanned, the store
 * and the device; `upload` sends the queue with POST /api/v1/redemptions/batch when the
 * network is back. A typed code cannot be verified offline and is refused.
 *
 * Everything outside (the HTTP API, the device's storage, the clock, the Ed25519 verifier)
 * is passed in, so node tests drive the same code the page runs (tests/js/till.test.js).
 * Outcomes: {outcome: "redeemed" | "refused" | "queued", reason, detail, ...}; `reason` is
 * the API's code, or one of DEVICE_REASONS for what only the device can say.
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory(require("./codes.js"), require("./qr.js"));
  } else {
    root.CouponTill = factory(root.CouponCodes, root.CouponQr);
  }
})(typeof self !== "undefined" ? self : this, function (codes, qr) {
  "use strict";

  var DEBOUNCE_MS = 3000;
  var ATTEMPTS = 2; // a request that gets no answer is sent once more, with the same key
  var BATCH_MAX = 500;
  var REVOCATION_PAGE = 500;
  // Refusals that come from the device, not from the API.
  var DEVICE_REASONS = {
    offlineCode: "offline_code", // a typed code while offline: it cannot be verified here
    offlineUnverifiable: "offline_unverifiable", // no keys or no Ed25519 on this device yet
    network: "network_error" // a typed code and no answer from the server
  };

  /* The same text again, while it stays in view or within `windowMs` of last being seen,
   * is not a new scan: a QR held in front of the camera is redeemed once. */
  function Debouncer(windowMs) {
    this.windowMs = windowMs || DEBOUNCE_MS;
    this.text = null;
    this.seenAt = -Infinity;
  }
  Debouncer.prototype.isRepeat = function (text, now) {
    var repeat = text === this.text && now - this.seenAt < this.windowMs;
    this.text = text;
    this.seenAt = now;
    return repeat;
  };
  Debouncer.prototype.forget = function () {
    this.text = null;
  };

  function refused(reason, detail, extra) {
    var outcome = { outcome: "refused", reason: reason, detail: detail || null, source: "server" };
    return assign(outcome, extra || {});
  }

  function assign(target, source) {
    for (var name in source) {
      if (Object.prototype.hasOwnProperty.call(source, name)) {
        target[name] = source[name];
      }
    }
    return target;
  }

  function iso(ms) {
    return new Date(ms).toISOString();
  }

  /* The offline decision for verified claims, in the order the server's why_not() uses:
   * the most final reason first. null when the coupon may be queued. */
  function offlineRefusal(claims, facts) {
    var deal = facts.deal;
    var taken = facts.takenUses || 0;
    var nowSeconds = Math.floor(facts.now / 1000);
    if (facts.revoked) {
      return "coupon_voided";
    }
    if (deal && taken >= deal.uses_per_coupon) {
      return "coupon_already_redeemed";
    }
    if (!deal && taken > 0) {
      return "coupon_already_redeemed";
    }
    if (nowSeconds >= claims.validUntil) {
      return "coupon_expired";
    }
    if (!deal) {
      return "coupon_not_found"; // another merchant's deal, or one this device has not heard of
    }
    if (!deal.tipped) {
      return "coupon_pending";
    }
    if (facts.now < Date.parse(deal.valid_from)) {
      return "coupon_not_yet_valid";
    }
    if (deal.store_ids && deal.store_ids.length && deal.store_ids.indexOf(facts.storeId) < 0) {
      return "store_not_allowed";
    }
    if (taken + facts.uses > deal.uses_per_coupon) {
      return "insufficient_uses";
    }
    return null;
  }

  function create(deps) {
    var api = deps.api;
    var storage = deps.storage;
    var clock = deps.clock || { now: function () { return Date.now(); } };
    var newId = deps.newId;
    var isOnline = deps.online || function () { return true; };
    var verifier = null;
    var verifierPromise = null;
    var debouncer = new Debouncer(deps.debounceMs);
    var state = { context: deps.context || null, storeId: deps.storeId || null, deviceId: deps.deviceId };

    function deal(campaignId) {
      var deals = (state.context && state.context.deals) || [];
      for (var i = 0; i < deals.length; i++) {
        if (deals[i].id === campaignId) {
          return deals[i];
        }
      }
      return null;
    }

    function withStore(body) {
      // A store-pinned key implies its store; a roaming one names the store chosen once.
      if (state.storeId && !(state.context && state.context.store)) {
        body.store_id = state.storeId;
      }
      if (state.deviceId) {
        body.device_id = state.deviceId;
      }
      return body;
    }

    function getVerifier() {
      if (!verifierPromise) {
        verifierPromise = Promise.resolve(deps.verifier ? deps.verifier() : null).then(function (found) {
          verifier = found;
          return found;
        }, function () {
          return null;
        });
      }
      return verifierPromise;
    }

    /* POST with retries that reuse the key: {status, body} or {status: 0} (no answer). */
    function send(call) {
      function attempt(left) {
        return call().then(function (answer) {
          if (answer.status >= 500 && left > 1) {
            return attempt(left - 1);
          }
          return answer;
        }, function () {
          return left > 1 ? attempt(left - 1) : { status: 0, body: null };
        });
      }
      return attempt(ATTEMPTS);
    }

    function redeemedOutcome(body, uses) {
      var coupon = body.coupon || {};
      var found = deal(coupon.campaign_id);
      var windowSeconds = (state.context && state.context.merchant && state.context.merchant.reversal_window) || 0;
      var redeemedAt = Date.parse(body.redeemed_at);
      return {
        outcome: "redeemed",
        code: coupon.code,
        display: coupon.display,
        title: found ? found.title : null,
        usesLeft: coupon.uses_left,
        usesTotal: coupon.uses_total,
        uses: body.uses || uses,
        redemptionId: body.id,
        redeemedAt: body.redeemed_at,
        reversibleUntil: windowSeconds > 0 ? redeemedAt + windowSeconds * 1000 : null
      };
    }

    function problemOutcome(answer) {
      var body = answer.body || {};
      return refused(body.code || "http_" + answer.status, body.detail || body.title || null,
        { status: answer.status, problem: body });
    }

    /* Redeem online; a QR that gets no answer is verified here and queued instead. */
    function redeem(scan, uses) {
      uses = uses || 1;
      if (!isOnline()) {
        return offline(scan, uses, null);
      }
      var key = newId();
      var body = withStore(scan.qr !== undefined ? { qr: scan.qr } : { code: scan.code });
      if (uses !== 1) {
        body.uses = uses;
      }
      return send(function () { return api.redeem(body, key); }).then(function (answer) {
        if (answer.status === 201) {
          var outcome = redeemedOutcome(answer.body, uses);
          return Promise.resolve(storage.addAccepted(outcome.code, outcome.uses, clock.now())).then(function () {
            return outcome;
          });
        }
        if (answer.status === 0 || answer.status >= 500) {
          return offline(scan, uses, key);
        }
        return problemOutcome(answer);
      });
    }

    function offline(scan, uses, idempotencyKey) {
      if (scan.qr === undefined) {
        return Promise.resolve(refused(isOnline() ? DEVICE_REASONS.network : DEVICE_REASONS.offlineCode,
          null, { source: "device" }));
      }
      return Promise.all([getVerifier(), storage.get("qrKeys")]).then(function (found) {
        var keys = found[1];
        if (!found[0] || !keys || !keys.length) {
          return refused(DEVICE_REASONS.offlineUnverifiable, null, { source: "device" });
        }
        return qr.verify(scan.qr, keys, found[0]).then(function (claims) {
          return queueVerified(scan, claims, uses, idempotencyKey);
        }, function (error) {
          if (error && error.reason) {
            return refused("invalid_qr", null, { source: "device", qrReason: error.reason });
          }
          throw error;
        });
      });
    }

    function queueVerified(scan, claims, uses, idempotencyKey) {
      var found = deal(claims.campaignId);
      return Promise.all([storage.isRevoked(claims.code), storage.acceptedUses(claims.code)]).then(function (facts) {
        var reason = offlineRefusal(claims, {
          deal: found, revoked: facts[0], takenUses: facts[1], now: clock.now(), storeId: state.storeId, uses: uses
        });
        var display = codes.display(claims.code);
        if (reason) {
          return refused(reason, null, { source: "device", display: display, title: found ? found.title : null });
        }
        var now = clock.now();
        var item = {
          nonce: newId(),
          qr: scan.qr,
          code: claims.code,
          campaign_id: claims.campaignId,
          store_id: state.storeId,
          scanned_at: iso(now),
          device_id: state.deviceId,
          uses: uses,
          state: "waiting",
          idempotency_key: idempotencyKey || null
        };
        return Promise.all([storage.putQueued(item), storage.addAccepted(claims.code, uses, now)]).then(function () {
          return { outcome: "queued", code: claims.code, display: display, title: found ? found.title : null,
            uses: uses, nonce: item.nonce };
        });
      });
    }

    /* What a scanned text is before anything is asked: a refusal, or what to redeem and
     * whether to ask how many uses (a deal of several uses per coupon). */
    function prepareQr(text) {
      var parsed;
      try {
        parsed = qr.parse(text);
      } catch (error) {
        return { refusal: refused("invalid_qr", null, { source: "device", qrReason: error.reason }) };
      }
      var found = deal(parsed.campaignId);
      return { scan: { qr: text }, deal: found, askUses: !!(found && found.uses_per_coupon > 1),
        maxUses: found ? found.uses_per_coupon : 1 };
    }

    /* A typed code: its check character first, then (online, when the merchant has deals of
     * several uses) the server's validate tells whether to ask how many uses. */
    function prepareCode(raw) {
      var code;
      try {
        code = codes.canonical(raw);
      } catch (error) {
        if (error instanceof codes.CodeError) {
          return Promise.resolve({ refusal: refused("invalid_code", null, { source: "device", codeReason: error.reason }) });
        }
        throw error;
      }
      if (!isOnline()) {
        return Promise.resolve({ refusal: refused(DEVICE_REASONS.offlineCode, null, { source: "device" }) });
      }
      var multi = ((state.context && state.context.deals) || []).some(function (d) { return d.uses_per_coupon > 1; });
      if (!multi) {
        return Promise.resolve({ scan: { code: code }, askUses: false, maxUses: 1 });
      }
      return send(function () { return api.validate(withStore({ code: code })); }).then(function (answer) {
        if (answer.status !== 200) {
          return answer.status === 0 ? { scan: { code: code }, askUses: false, maxUses: 1 }
            : { refusal: problemOutcome(answer) };
        }
        var coupon = answer.body.coupon || {};
        if (!answer.body.ok) {
          return { refusal: refused(answer.body.code, answer.body.detail, { display: coupon.display }) };
        }
        var left = coupon.uses_left || 1;
        return { scan: { code: code }, deal: deal(coupon.campaign_id), askUses: left > 1, maxUses: left };
      });
    }

    function reverse(outcome, reason) {
      var key = newId();
      return send(function () { return api.reverse(outcome.redemptionId, { reason: reason }, key); }).then(function (answer) {
        if (answer.status === 200) {
          return Promise.resolve(storage.addAccepted(outcome.code, -outcome.uses, clock.now())).then(function () {
            return { outcome: "reversed", code: outcome.code, display: outcome.display, title: outcome.title,
              usesLeft: answer.body.coupon && answer.body.coupon.uses_left };
          });
        }
        return answer.status === 0 ? refused(DEVICE_REASONS.network, null, { source: "device" }) : problemOutcome(answer);
      });
    }

    /* Keys, revocations (from the stored cursor, every page) and who the key is. */
    function sync() {
      var done = { keys: false, revocations: 0, context: false };
      return api.qrKeys().then(function (answer) {
        if (answer.status === 200 && answer.body && answer.body.keys) {
          done.keys = true;
          return storage.set("qrKeys", answer.body.keys);
        }
      }).then(function () {
        return storage.get("revocationCursor");
      }).then(function pages(cursor) {
        return api.revocations(cursor, REVOCATION_PAGE).then(function (answer) {
          if (answer.status !== 200) {
            return null;
          }
          var rows = answer.body.data || [];
          done.revocations += rows.length;
          return Promise.resolve(storage.addRevoked(rows.map(function (row) { return row.code; }))).then(function () {
            if (answer.body.next) {
              return storage.set("revocationCursor", answer.body.next).then(function () {
                return rows.length >= REVOCATION_PAGE ? pages(answer.body.next) : null;
              });
            }
            return null;
          });
        });
      }).then(function () {
        return api.whoami();
      }).then(function (answer) {
        if (answer.status === 200) {
          state.context = answer.body;
          done.context = true;
          return storage.set("context", answer.body);
        }
        if (answer.status === 401) {
          done.unauthenticated = true;
        }
      }).then(function () {
        return done;
      });
    }

    /* Upload what waits: replays of online attempts that got no answer (their own key),
     * then the rest in batches. Resolves to the items whose state changed. */
    function upload() {
      return Promise.resolve(storage.queued()).then(function (items) {
        var waiting = items.filter(function (item) { return item.state === "waiting"; });
        var replays = waiting.filter(function (item) { return item.idempotency_key; });
        var rest = waiting.filter(function (item) { return !item.idempotency_key; });
        var changed = [];
        var chain = Promise.resolve();
        replays.forEach(function (item) {
          chain = chain.then(function () { return replay(item); }).then(function (item2) {
            if (item2) {
              changed.push(item2);
            }
          });
        });
        for (var start = 0; start < rest.length; start += BATCH_MAX) {
          (function (chunk) {
            chain = chain.then(function () { return uploadBatch(chunk); }).then(function (items2) {
              changed.push.apply(changed, items2);
            });
          })(rest.slice(start, start + BATCH_MAX));
        }
        return chain.then(function () { return changed; });
      });
    }

    function replay(item) {
      var body = { qr: item.qr, uses: item.uses, device_id: item.device_id };
      if (state.storeId && !(state.context && state.context.store)) {
        body.store_id = item.store_id;
      }
      return send(function () { return api.redeem(body, item.idempotency_key); }).then(function (answer) {
        if (answer.status === 0 || answer.status >= 500) {
          return null;
        }
        var done = assign({}, item);
        done.uploaded_at = iso(clock.now());
        if (answer.status === 201) {
          done.state = "accepted";
          done.redemption_id = answer.body.id;
        } else {
          done.state = answer.body && answer.body.code === "coupon_already_redeemed" ? "conflict" : "rejected";
          done.reason = answer.body && answer.body.code;
          done.detail = answer.body && answer.body.detail;
        }
        return Promise.resolve(storage.putQueued(done)).then(function () { return done; });
      });
    }

    function uploadBatch(items) {
      var body = {
        items: items.map(function (item) {
          return { qr: item.qr, store_id: item.store_id, scanned_at: item.scanned_at,
            device_id: item.device_id, nonce: item.nonce, uses: item.uses };
        })
      };
      var key = "batch-" + items[0].nonce + "-" + items.length + "-" + items[items.length - 1].nonce;
      return send(function () { return api.batch(body, key); }).then(function (answer) {
        if (answer.status !== 200 || !answer.body || !answer.body.items) {
          return [];
        }
        var byNonce = {};
        answer.body.items.forEach(function (result) { byNonce[result.nonce] = result; });
        var changed = items.filter(function (item) { return byNonce[item.nonce]; }).map(function (item) {
          var result = byNonce[item.nonce];
          var done = assign({}, item);
          // A duplicate (this device sent it before and lost the answer) takes its first outcome.
          done.state = result.status === "duplicate" && result.first_status ? result.first_status : result.status;
          done.reason = result.reason || null;
          done.detail = result.detail || null;
          done.redemption_id = result.redemption_id || null;
          done.uploaded_at = iso(clock.now());
          return done;
        });
        return Promise.all(changed.map(function (done) {
          var stored = storage.putQueued(done);
          // A rejected upload gives the device's uses back: the coupon was not used here (a
          // conflict keeps them: it was used, elsewhere first).
          return done.state !== "rejected" ? stored
            : Promise.all([stored, storage.addAccepted(done.code, -done.uses, clock.now())]);
        })).then(function () { return changed; });
      });
    }

    return {
      state: state,
      debouncer: debouncer,
      deal: deal,
      prepareQr: prepareQr,
      prepareCode: prepareCode,
      redeem: redeem,
      reverse: reverse,
      sync: sync,
      upload: upload,
      verifierName: function () { return verifier ? verifier.name : null; },
      ensureVerifier: getVerifier
    };
  }

  return {
    DEBOUNCE_MS: DEBOUNCE_MS,
    DEVICE_REASONS: DEVICE_REASONS,
    Debouncer: Debouncer,
    offlineRefusal: offlineRefusal,
    create: create
  };
});
