// The browser's QR payload verification (couponsvc/static/scan/qr.js) against the vectors
// that couponsvc/qr/payload.py generated (tests/vectors/qr.json), through node's WebCrypto
// Ed25519 and through the vendored @noble/ed25519. Run: node --test tests/js/
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const fs = require("node:fs");
const { pathToFileURL } = require("node:url");

const qr = require("../../couponsvc/static/scan/qr.js");
const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, "../vectors/qr.json"), "utf8"));
const VENDOR = path.join(__dirname, "../../couponsvc/static/vendor");

function nobleEntry() {
  // scripts/vendor records each vendored package's version in VENDOR.json.
  const manifest = JSON.parse(fs.readFileSync(path.join(VENDOR, "VENDOR.json"), "utf8"));
  const noble = manifest.packages["@noble/ed25519"];
  assert.ok(noble, "@noble/ed25519 is vendored");
  return path.join(VENDOR, "@noble/ed25519", noble.version, "index.js");
}

async function verifiers() {
  const list = [["webcrypto", qr.webCryptoVerifier(globalThis.crypto.subtle)]];
  list.push(["noble", qr.nobleVerifier(await import(pathToFileURL(nobleEntry()).href))]);
  return list;
}

async function outcome(payload, keys, verifier) {
  try {
    const claims = await qr.verify(payload, keys, verifier);
    return { code: claims.code, campaign_id: claims.campaignId, valid_until: claims.validUntil, kid: claims.kid };
  } catch (error) {
    assert.ok(error instanceof qr.QrError, String(error && error.stack));
    return { reason: error.reason };
  }
}

test("every vector verifies or is refused as the server says", async (t) => {
  assert.ok(vectors.cases.some((v) => v.reason === "signature"));
  assert.ok(vectors.cases.some((v) => v.kid));
  for (const [name, verifier] of await verifiers()) {
    await t.test(name, async () => {
      for (const vector of vectors.cases) {
        const expected = "reason" in vector ? { reason: vector.reason }
          : { code: vector.code, campaign_id: vector.campaign_id, valid_until: vector.valid_until, kid: vector.kid };
        assert.deepEqual(await outcome(vector.payload, vectors.keys, verifier), expected, vector.note);
      }
    });
  }
});

test("the forged vector verifies under the key that made it, so it is refused for its key alone", async () => {
  const forged = vectors.cases.find((v) => v.note.startsWith("forged"));
  const verifier = qr.webCryptoVerifier(globalThis.crypto.subtle);
  const claims = await qr.verify(forged.payload, [vectors.stranger_key], verifier);
  assert.equal(claims.kid, vectors.stranger_key.kid);
});

test("with no keys nothing verifies", async () => {
  const good = vectors.cases.find((v) => v.kid);
  const verifier = qr.webCryptoVerifier(globalThis.crypto.subtle);
  assert.deepEqual(await outcome(good.payload, [], verifier), { reason: "signature" });
});

test("base64url round trip is strict", () => {
  for (const n of [0, 1, 2, 3, 31, 32, 64]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
    const text = qr.b64urlEncode(bytes);
    assert.deepEqual(qr.b64urlDecode(text), bytes);
    assert.equal(Buffer.from(bytes).toString("base64url"), text);
  }
  assert.equal(qr.b64urlDecode("AB"), null); // spare bits set
  assert.equal(qr.b64urlDecode("A"), null);
  assert.equal(qr.b64urlDecode("AA=="), null);
});

test("chooseVerifier takes WebCrypto when it really verifies, else the fallback", async () => {
  const native = await qr.chooseVerifier(globalThis.crypto.subtle, () => null);
  assert.equal(native.name, "webcrypto");
  const broken = { importKey: () => Promise.reject(new Error("NotSupportedError")) };
  assert.equal(await qr.chooseVerifier(broken, () => null), null);
  const liar = { importKey: () => Promise.resolve({}), verify: () => Promise.resolve(true) };
  assert.equal(await qr.chooseVerifier(liar, () => null), null, "a verify that says yes to all is no verifier");
  const chosen = await qr.chooseVerifier(broken, () => import(pathToFileURL(nobleEntry()).href));
  assert.equal(chosen.name, "noble");
});
