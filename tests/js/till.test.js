// The till's decisions (couponsvc/static/scan/till.js) with the device's storage in memory
// (store.js's memoryStorage) and an HTTP API that answers as the contract says; the QR
// vectors' keys sign the coupons. Run: node --test tests/js/
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const fs = require("node:fs");

const Till = require("../../couponsvc/static/scan/till.js");
const Store = require("../../couponsvc/static/scan/store.js");
const qr = require("../../couponsvc/static/scan/qr.js");
const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, "../vectors/qr.json"), "utf8"));

const GOOD = vectors.cases.find((v) => v.note === "signed by the current key");
const OLD = vectors.cases.find((v) => v.note === "signed by an older key still in the set");
const FORGED = vectors.cases.find((v) => v.note.startsWith("forged"));
const NOW = Date.parse("2027-01-15T04:00:00Z"); // the vectors' coupons are valid until 2027-06-30

function context(overrides = {}) {
  return {
    key: { role: "scanner" }, merchant: { id: "mer_1", reversal_window: 600 }, store: null,
    stores: [{ id: "sto_1" }, { id: "sto_2" }],
    deals: [{ id: GOOD.campaign_id, title: "双人牛肉面套餐", tipped: true, uses_per_coupon: 1,
      valid_from: "2027-01-01T00:00:00Z", valid_until: "2027-06-30T14:00:00Z", store_ids: [], ...overrides }],
  };
}

function recorder(answers = {}) {
  const calls = [];
  const answer = (name, fallback) => (...args) => {
    calls.push([name, ...args]);
    const given = answers[name];
    const value = typeof given === "function" ? given(...args) : given || fallback;
    return value instanceof Error ? Promise.reject(value) : Promise.resolve(value);
  };
  return {
    calls,
    api: {
      redeem: answer("redeem", { status: 201, body: { id: "red_1", uses: 1, redeemed_at: new Date(NOW).toISOString(),
        coupon: { code: GOOD.code, display: "X", uses_left: 0, uses_total: 1, campaign_id: GOOD.campaign_id } } }),
      validate: answer("validate", { status: 200, body: { ok: true, coupon: { uses_left: 3, campaign_id: GOOD.campaign_id } } }),
      reverse: answer("reverse", { status: 200, body: { coupon: { uses_left: 1 } } }),
      batch: answer("batch", null),
      qrKeys: answer("qrKeys", { status: 200, body: { keys: vectors.keys } }),
      revocations: answer("revocations", { status: 200, body: { data: [], next: "c0" } }),
      whoami: answer("whoami", { status: 200, body: context() }),
    },
  };
}

function till(api, { online = true, ctx = context(), storage = Store.memoryStorage(), storeId = "sto_1" } = {}) {
  let n = 0;
  const state = { online };
  const t = Till.create({
    api, storage, context: ctx, storeId, deviceId: "dev_test",
    clock: { now: () => NOW }, newId: () => `id_${++n}`, online: () => state.online,
    verifier: () => qr.webCryptoVerifier(globalThis.crypto.subtle),
  });
  return { t, storage, state };
}

test("the same text within the window is a repeat, and stays one while it is seen", () => {
  const d = new Till.Debouncer(3000);
  assert.equal(d.isRepeat("A", 0), false);
  assert.equal(d.isRepeat("A", 2000), true);
  assert.equal(d.isRepeat("A", 4500), true, "seen again within 3 s of the last sighting");
  assert.equal(d.isRepeat("A", 8000), false, "gone for longer than the window");
  assert.equal(d.isRepeat("B", 8100), false);
  assert.equal(d.isRepeat("A", 8200), false, "another code came between");
});

test("online: a QR is redeemed with an Idempotency-Key, the store chosen and the device", async () => {
  const { api, calls } = recorder();
  const { t, storage } = till(api);
  const outcome = await t.redeem({ qr: GOOD.payload }, 1);
  assert.equal(outcome.outcome, "redeemed");
  assert.equal(outcome.title, "双人牛肉面套餐");
  assert.equal(outcome.reversibleUntil, NOW + 600_000);
  const [name, body, key] = calls[0];
  assert.equal(name, "redeem");
  assert.deepEqual(body, { qr: GOOD.payload, store_id: "sto_1", device_id: "dev_test" });
  assert.ok(key);
  assert.equal(await storage.acceptedUses(GOOD.code), 1);
});

test("a store-pinned key sends no store", async () => {
  const { api, calls } = recorder();
  const { t } = till(api, { ctx: { ...context(), store: { id: "sto_1" } } });
  await t.redeem({ qr: GOOD.payload }, 1);
  assert.equal("store_id" in calls[0][1], false);
});

test("a refusal carries the API's code and words", async () => {
  const { api } = recorder({ redeem: { status: 409, body: { code: "coupon_already_redeemed", detail: "used at 文清路店 on 2027-01-15 12:00" } } });
  const outcome = await till(api).t.redeem({ code: GOOD.code }, 1);
  assert.deepEqual([outcome.outcome, outcome.reason, outcome.detail],
    ["refused", "coupon_already_redeemed", "used at 文清路店 on 2027-01-15 12:00"]);
});

test("no answer: the request is sent again with the same key, then the QR is queued", async () => {
  const { api, calls } = recorder({ redeem: new Error("network") });
  const { t, storage } = till(api);
  await t.sync();
  const outcome = await t.redeem({ qr: GOOD.payload }, 1);
  assert.equal(outcome.outcome, "queued");
  const redeems = calls.filter((c) => c[0] === "redeem");
  assert.equal(redeems.length, 2);
  assert.equal(redeems[0][2], redeems[1][2], "the retry reuses the Idempotency-Key");
  const [item] = await storage.queued();
  assert.equal(item.idempotency_key, redeems[0][2], "the upload replays that key first");
});

test("a typed code with no answer is refused, never queued", async () => {
  const { api } = recorder({ redeem: new Error("network") });
  const outcome = await till(api).t.redeem({ code: GOOD.code }, 1);
  assert.deepEqual([outcome.outcome, outcome.reason], ["refused", "network_error"]);
});

test("offline: a signed QR is verified on the device and queued with nonce, time, store and device", async () => {
  const { api, calls } = recorder();
  const { t, storage, state } = till(api);
  await t.sync();
  state.online = false;
  const outcome = await t.redeem({ qr: OLD.payload }, 1);
  assert.equal(outcome.outcome, "queued");
  assert.equal(calls.filter((c) => c[0] === "redeem").length, 0);
  const [item] = await storage.queued();
  assert.deepEqual([item.nonce, item.scanned_at, item.store_id, item.device_id, item.state, item.code],
    [outcome.nonce, new Date(NOW).toISOString(), "sto_1", "dev_test", "waiting", OLD.code]);
  const again = await t.redeem({ qr: OLD.payload }, 1);
  assert.deepEqual([again.outcome, again.reason], ["refused", "coupon_already_redeemed"]);
});

test("offline: forged, revoked, foreign and typed are refused on the device", async () => {
  const { api } = recorder({ revocations: { status: 200, body: { data: [{ code: GOOD.code }], next: "c1" } } });
  const { t, state } = till(api);
  await t.sync();
  state.online = false;
  const forged = await t.redeem({ qr: FORGED.payload }, 1);
  assert.deepEqual([forged.reason, forged.source, forged.qrReason], ["invalid_qr", "device", "signature"]);
  assert.equal((await t.redeem({ qr: GOOD.payload }, 1)).reason, "coupon_voided");
  const foreign = vectors.cases.find((v) => v.kid && v.campaign_id !== GOOD.campaign_id);
  assert.equal(foreign, undefined, "the vectors share one campaign; a foreign deal is tested below");
  const typed = await t.prepareCode(GOOD.code);
  assert.equal(typed.refusal.reason, "offline_code");
});

test("offline refusals follow the server's order", () => {
  const deal = context().deals[0];
  const claims = { validUntil: Math.floor(NOW / 1000) + 60 };
  const facts = (extra) => ({ deal, revoked: false, takenUses: 0, now: NOW, storeId: "sto_1", uses: 1, ...extra });
  assert.equal(Till.offlineRefusal(claims, facts()), null);
  assert.equal(Till.offlineRefusal(claims, facts({ revoked: true, takenUses: 1 })), "coupon_voided");
  assert.equal(Till.offlineRefusal(claims, facts({ takenUses: 1 })), "coupon_already_redeemed");
  assert.equal(Till.offlineRefusal({ validUntil: Math.floor(NOW / 1000) }, facts()), "coupon_expired");
  assert.equal(Till.offlineRefusal(claims, facts({ deal: null })), "coupon_not_found");
  assert.equal(Till.offlineRefusal(claims, facts({ deal: { ...deal, tipped: false } })), "coupon_pending");
  assert.equal(Till.offlineRefusal(claims, facts({ deal: { ...deal, valid_from: "2027-02-01T00:00:00Z" } })), "coupon_not_yet_valid");
  assert.equal(Till.offlineRefusal(claims, facts({ deal: { ...deal, store_ids: ["sto_2"] } })), "store_not_allowed");
  const multi = { ...deal, uses_per_coupon: 3 };
  assert.equal(Till.offlineRefusal(claims, facts({ deal: multi, takenUses: 2, uses: 1 })), null);
  assert.equal(Till.offlineRefusal(claims, facts({ deal: multi, takenUses: 2, uses: 2 })), "insufficient_uses");
  assert.equal(Till.offlineRefusal(claims, facts({ deal: multi, takenUses: 3 })), "coupon_already_redeemed");
});

test("multi-use: a QR of such a deal asks; a typed code asks when the server says uses are left", async () => {
  const { api, calls } = recorder();
  const { t } = till(api, { ctx: context({ uses_per_coupon: 3 }) });
  const scanned = t.prepareQr(GOOD.payload);
  assert.deepEqual([scanned.askUses, scanned.maxUses], [true, 3]);
  const typed = await t.prepareCode(GOOD.code.toLowerCase());
  assert.deepEqual([typed.askUses, typed.maxUses, typed.scan.code], [true, 3, GOOD.code]);
  assert.equal(calls[0][0], "validate");
  await t.redeem(typed.scan, 2);
  assert.equal(calls.at(-1)[1].uses, 2);
});

test("a single-use merchant's typed code goes straight to the redeem", async () => {
  const { api, calls } = recorder();
  const typed = await till(api).t.prepareCode(GOOD.code);
  assert.equal(typed.askUses, false);
  assert.equal(calls.length, 0);
  const typo = await till(api).t.prepareCode(GOOD.code.slice(0, 11) + (GOOD.code[11] === "2" ? "3" : "2"));
  assert.deepEqual([typo.refusal.reason, typo.refusal.codeReason], ["invalid_code", "check"]);
});

test("sync reads every revocation page from the stored cursor", async () => {
  const pages = {
    undefined: { status: 200, body: { data: Array.from({ length: 500 }, (_, i) => ({ code: `C${i}` })), next: "p1" } },
    p1: { status: 200, body: { data: [{ code: "LAST" }], next: "p2" } },
    p2: { status: 200, body: { data: [], next: "p2" } },
  };
  const { api, calls } = recorder({ revocations: (after) => pages[after] });
  const { t, storage } = till(api);
  const done = await t.sync();
  assert.equal(done.revocations, 501);
  assert.equal(await storage.get("revocationCursor"), "p2");
  assert.equal(await storage.isRevoked("LAST"), true);
  await t.sync();
  assert.deepEqual(calls.filter((c) => c[0] === "revocations").map((c) => c[1]), [undefined, "p1", "p2"]);
});

test("upload: replays first, then one batch; each item takes the server's outcome", async () => {
  let lost = 2; // the first two attempts get no answer
  const { api, calls } = recorder({
    redeem: () => (lost-- > 0 ? new Error("timeout") : { status: 201, body: { id: "red_9" } }),
    batch: (body) => ({ status: 200, body: { items: body.items.map((item, i) => ({
      nonce: item.nonce, status: i ? "conflict" : "accepted", reason: i ? "offline_conflict" : null,
      redemption_id: i ? null : "red_10" })) } }),
  });
  const { t, storage, state } = till(api);
  await t.sync();
  assert.equal((await t.redeem({ qr: GOOD.payload }, 1)).outcome, "queued"); // no answer: queued with id_1
  state.online = false;
  const other = vectors.cases.filter((v) => v.kid && v.code !== GOOD.code);
  for (const v of other.slice(0, 2)) await t.redeem({ qr: v.payload }, 1);
  state.online = true;
  const changed = await t.upload();
  assert.deepEqual(changed.map((item) => item.state).sort(), ["accepted", "accepted", "conflict"]);
  const batch = calls.find((c) => c[0] === "batch");
  assert.equal(batch[1].items.length, 2);
  const redeems = calls.filter((c) => c[0] === "redeem");
  assert.deepEqual(redeems.map((c) => c[2]), ["id_1", "id_1", "id_1"], "the replay reuses the lost request's key");
  for (const item of batch[1].items) {
    assert.deepEqual(Object.keys(item).sort(), ["device_id", "nonce", "qr", "scanned_at", "store_id", "uses"]);
  }
  assert.ok(batch[2], "the batch carries an Idempotency-Key");
  assert.equal((await storage.queued()).filter((item) => item.state === "waiting").length, 0);
  assert.deepEqual(await t.upload(), [], "nothing is sent twice");
});

test("a duplicate takes its first outcome", async () => {
  const { api } = recorder({ batch: (body) => ({ status: 200, body: { items: body.items.map((item) => ({
    nonce: item.nonce, status: "duplicate", first_status: "conflict", reason: "coupon_already_redeemed" })) } }) });
  const { t, state } = till(api);
  await t.sync();
  state.online = false;
  await t.redeem({ qr: GOOD.payload }, 1);
  state.online = true;
  const [item] = await t.upload();
  assert.deepEqual([item.state, item.reason], ["conflict", "coupon_already_redeemed"]);
});

test("a batch endpoint that is not there yet leaves the queue waiting", async () => {
  const { api } = recorder({ batch: { status: 404, body: { code: "not_found" } } });
  const { t, storage, state } = till(api);
  await t.sync();
  state.online = false;
  await t.redeem({ qr: GOOD.payload }, 1);
  state.online = true;
  assert.deepEqual(await t.upload(), []);
  assert.equal((await storage.queued())[0].state, "waiting");
});

test("a reversal gives the device its uses back", async () => {
  const { api } = recorder();
  const { t, storage } = till(api);
  const done = await t.redeem({ qr: GOOD.payload }, 1);
  const undone = await t.reverse(done, "wrong coupon");
  assert.equal(undone.outcome, "reversed");
  assert.equal(await storage.acceptedUses(GOOD.code), 0);
});
