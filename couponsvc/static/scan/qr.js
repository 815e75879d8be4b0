/* Signed coupon QR payloads in the browser: couponsvc/qr/payload.py's `parse`, ported.
 *
 *     CPN1.<code>.<campaign_id>.<valid_until unix seconds>.<signature>
 *
 * The signature is Ed25519 over the UTF-8 bytes of everything before the last dot,
 * base64url without padding (canonical: no padding, zero spare bits). `verify` tries each
 * public key of the set (GET /api/v1/qr-keys), as the server's key ring does. It needs an
 * Ed25519 verifier: WebCrypto where the browser has Ed25519 (found by a real verify of
 * RFC 8032's first test vector, not by asking), else @noble/ed25519 (vendored).
 * tests/vectors/qr.json holds the cases the Python and this code are tested against.
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory(require("./codes.js"));
  } else {
    root.CouponQr = factory(root.CouponCodes);
  }
})(typeof self !== "undefined" ? self : this, function (codes) {
  "use strict";

  var PREFIX = "CPN1";
  var MAX_LENGTH = 512;
  var MAX_CAMPAIGN_ID_LENGTH = 128;
  var UNIX_SECONDS = /^(?:0|[1-9][0-9]{0,11})$/;
  var LAST_SECOND = 253402300799; // 9999-12-31T23:59:59Z: the last one Python's datetime holds
  var SIGNATURE_LENGTH = 64;
  // Python's str.strip(): the code points for which str.isspace() is true.
  var EDGE_SPACE = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
  var B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  function QrError(reason, message) {
    this.name = "QrError";
    this.reason = reason;
    this.message = message;
  }
  QrError.prototype = Object.create(Error.prototype);
  QrError.prototype.constructor = QrError;
  QrError.FORMAT = "format";
  QrError.SIGNATURE = "signature";

  function b64urlEncode(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i += 3) {
      var n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
      var chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
      for (var k = 0; k < chars; k++) {
        out += B64URL.charAt((n >> (18 - 6 * k)) & 63);
      }
    }
    return out;
  }

  /* Strict inverse of b64urlEncode (keyring.b64url_decode): null unless canonical. */
  function b64urlDecode(text) {
    if (text.length % 4 === 1) {
      return null;
    }
    var bytes = new Uint8Array(Math.floor((text.length * 6) / 8));
    var buffer = 0;
    var bits = 0;
    var at = 0;
    for (var i = 0; i < text.length; i++) {
      var value = B64URL.indexOf(text.charAt(i));
      if (value < 0) {
        return null;
      }
      buffer = ((buffer << 6) | value) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes[at++] = (buffer >> bits) & 0xff;
      }
    }
    if (bits && buffer & ((1 << bits) - 1)) {
      return null; // spare bits that are not zero: another text for the same bytes
    }
    return bytes;
  }

  function utf8(text) {
    return new TextEncoder().encode(text);
  }

  function isCampaignId(value) {
    return value.length > 0 && value.length <= MAX_CAMPAIGN_ID_LENGTH && /^[\x21-\x2d\x2f-\x7e]+$/.test(value);
  }

  function isCanonicalCode(value) {
    try {
      return codes.canonical(value) === value;
    } catch (error) {
      return false;
    }
  }

  /* The parts of scanned text, unverified; throws QrError("format"). */
  function parse(text) {
    if (typeof text !== "string") {
      throw new QrError(QrError.FORMAT, "not a coupon QR code");
    }
    text = text.replace(EDGE_SPACE, "");
    if (Array.from(text).length > MAX_LENGTH) {
      throw new QrError(QrError.FORMAT, "the text is too long to be a coupon QR code");
    }
    var parts = text.split(".");
    if (parts.length !== 5 || parts[0] !== PREFIX) {
      throw new QrError(QrError.FORMAT, "not a coupon QR code (expected " + PREFIX + ".…)");
    }
    if (!isCanonicalCode(parts[1])) {
      throw new QrError(QrError.FORMAT, "the QR code holds no valid coupon code");
    }
    if (!isCampaignId(parts[2])) {
      throw new QrError(QrError.FORMAT, "the QR code holds no valid campaign id");
    }
    if (!UNIX_SECONDS.test(parts[3]) || Number(parts[3]) > LAST_SECOND) {
      throw new QrError(QrError.FORMAT, "the QR code holds no valid expiry");
    }
    if (!parts[4]) {
      throw new QrError(QrError.FORMAT, "the QR code carries no signature");
    }
    return {
      code: parts[1],
      campaignId: parts[2],
      validUntil: Number(parts[3]),
      body: parts.slice(0, 4).join("."),
      signature: parts[4]
    };
  }

  /* The claims of scanned text once a key of `keys` ([{kid, x}]) vouches for them, with
   * that key's kid; rejects with QrError("format") or QrError("signature"). */
  function verify(text, keys, verifier) {
    var parsed;
    try {
      parsed = parse(text);
    } catch (error) {
      return Promise.reject(error);
    }
    var signature = b64urlDecode(parsed.signature);
    var refused = new QrError(QrError.SIGNATURE, "the QR code's signature does not verify");
    if (signature === null || signature.length !== SIGNATURE_LENGTH) {
      return Promise.reject(refused);
    }
    var message = utf8(parsed.body);
    var candidates = (keys || []).filter(function (key) {
      return key && typeof key.x === "string" && (!key.alg || key.alg === "Ed25519");
    });
    function attempt(index) {
      if (index >= candidates.length) {
        throw refused;
      }
      var key = candidates[index];
      var raw = b64urlDecode(key.x);
      if (raw === null || raw.length !== 32) {
        return attempt(index + 1);
      }
      return verifier.verify(raw, signature, message, key.kid).then(function (ok) {
        if (ok) {
          return { code: parsed.code, campaignId: parsed.campaignId, validUntil: parsed.validUntil, kid: key.kid };
        }
        return attempt(index + 1);
      });
    }
    return Promise.resolve().then(function () {
      return attempt(0);
    });
  }

  /* Ed25519 through WebCrypto; imported keys are kept by kid. */
  function webCryptoVerifier(subtle) {
    var imported = {};
    return {
      name: "webcrypto",
      verify: function (raw, signature, message, kid) {
        var id = kid + ":" + b64urlEncode(raw);
        if (!imported[id]) {
          imported[id] = subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
        }
        return imported[id].then(function (key) {
          return subtle.verify({ name: "Ed25519" }, key, signature, message);
        });
      }
    };
  }

  /* Ed25519 through @noble/ed25519 (its verifyAsync hashes with WebCrypto's SHA-512, or
   * with sha512 where it was given one). */
  function nobleVerifier(ed) {
    return {
      name: "noble",
      verify: function (raw, signature, message) {
        return Promise.resolve(ed.verifyAsync(signature, message, raw)).catch(function () {
          return false;
        });
      }
    };
  }

  // RFC 8032, 7.1, TEST 1: the empty message.
  var PROBE = {
    x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    signature: "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw"
  };

  /* Whether `verifier` really verifies: the RFC vector passes and a changed one fails. */
  function works(verifier) {
    var raw = b64urlDecode(PROBE.x);
    var good = b64urlDecode(PROBE.signature);
    var bad = good.slice();
    bad[0] ^= 1;
    return Promise.all([
      verifier.verify(raw, good, new Uint8Array(0), "probe"),
      verifier.verify(raw, bad, new Uint8Array(0), "probe")
    ]).then(function (answers) {
      return answers[0] === true && answers[1] === false;
    }, function () {
      return false;
    });
  }

  /* WebCrypto's Ed25519 when it works here, else noble (from `loadNoble()`, a promise of
   * the module); null when neither does. */
  function chooseVerifier(subtle, loadNoble) {
    var native = subtle ? webCryptoVerifier(subtle) : null;
    return (native ? works(native) : Promise.resolve(false)).then(function (ok) {
      if (ok) {
        return native;
      }
      return Promise.resolve(loadNoble ? loadNoble() : null).then(function (ed) {
        if (!ed) {
          return null;
        }
        var fallback = nobleVerifier(ed);
        return works(fallback).then(function (fine) {
          return fine ? fallback : null;
        });
      });
    });
  }

  return {
    PREFIX: PREFIX,
    QrError: QrError,
    parse: parse,
    verify: verify,
    b64urlEncode: b64urlEncode,
    b64urlDecode: b64urlDecode,
    webCryptoVerifier: webCryptoVerifier,
    nobleVerifier: nobleVerifier,
    chooseVerifier: chooseVerifier
  };
});
