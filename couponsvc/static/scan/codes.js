/* Coupon codes in the browser: the check character of couponsvc/codes.py, ported exactly.
 *
 * A code is 12 symbols of ALPHABET (no 0/O, 1/I/L); numbering positions 1..12 and letting
 * v(c) be a symbol's index in ALPHABET, a code is valid when sum(i * v(c_i)) = 0 (mod 31).
 * `canonical` accepts what the server accepts (any case, spaces, dashes, full-width forms
 * through NFKC) and refuses with the same reason (length, character, check), in the same
 * order; tests/vectors/codes.json holds the cases both implementations are tested against.
 * ES2019, no modules: loaded by a <script> tag in the page, and by require() in node tests.
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.CouponCodes = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
  var LENGTH = 12;
  var BASE = ALPHABET.length;
  var BODY = LENGTH - 1;
  var MAX_RAW_LENGTH = 64;
  var INVERSE_OF_LAST_WEIGHT = 13; // 12 * 13 = 156 = 5 * 31 + 1
  // Python's str.isspace() (every such code point), U+2212 MINUS SIGN, dashes (Pd) and
  // format characters (Cf: zero-width spaces, the BOM): what codes.py drops as separators.
  var SEPARATOR = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u2212\p{Pd}\p{Cf}]/u;

  var VALUE = {};
  for (var i = 0; i < ALPHABET.length; i++) {
    VALUE[ALPHABET.charAt(i)] = i;
  }

  function CodeError(reason, message) {
    this.name = "CodeError";
    this.reason = reason;
    this.message = message;
  }
  CodeError.prototype = Object.create(Error.prototype);
  CodeError.prototype.constructor = CodeError;
  CodeError.LENGTH = "length";
  CodeError.CHARACTER = "character";
  CodeError.CHECK = "check";

  function mod(n) {
    return ((n % BASE) + BASE) % BASE;
  }

  function checkSymbol(body) {
    if (body.length !== BODY) {
      throw new Error("the body of a code has " + BODY + " symbols, got " + body.length);
    }
    var total = 0;
    for (var p = 0; p < BODY; p++) {
      var value = VALUE[body.charAt(p)];
      if (value === undefined) {
        throw new Error(JSON.stringify(body.charAt(p)) + " is not a coupon code symbol");
      }
      total += (p + 1) * value;
    }
    return ALPHABET.charAt(mod(-total * INVERSE_OF_LAST_WEIGHT));
  }

  /* The canonical form of a typed code, or throws CodeError (reason: length, character,
   * check). Counts code points, as Python does. */
  function canonical(raw) {
    if (typeof raw !== "string") {
      throw new CodeError(CodeError.LENGTH, "a coupon code has " + LENGTH + " characters");
    }
    // A code point is one or two UTF-16 units: count them only when the answer is in doubt.
    if (raw.length > MAX_RAW_LENGTH && (raw.length > 2 * MAX_RAW_LENGTH || Array.from(raw).length > MAX_RAW_LENGTH)) {
      throw new CodeError(CodeError.LENGTH, "a coupon code has " + LENGTH + " characters");
    }
    var text = raw.normalize("NFKC").toUpperCase();
    var symbols = Array.from(text).filter(function (char) {
      return !SEPARATOR.test(char);
    });
    if (symbols.length !== LENGTH) {
      throw new CodeError(CodeError.LENGTH,
        "a coupon code has " + LENGTH + " characters, got " + symbols.length);
    }
    var total = 0;
    for (var p = 0; p < LENGTH; p++) {
      var value = VALUE[symbols[p]];
      if (value === undefined) {
        throw new CodeError(CodeError.CHARACTER,
          JSON.stringify(symbols[p]) + " (position " + (p + 1) + ") does not occur in coupon codes");
      }
      total += (p + 1) * value;
    }
    if (total % BASE) {
      throw new CodeError(CodeError.CHECK, "the code was mistyped: its check character fails");
    }
    return symbols.join("");
  }

  /* The code grouped for people, K7QM-3XPA-9RT2. */
  function display(code) {
    var c = canonical(code);
    return c.slice(0, 4) + "-" + c.slice(4, 8) + "-" + c.slice(8);
  }

  function isValid(code) {
    try {
      canonical(code);
      return true;
    } catch (error) {
      if (error instanceof CodeError) {
        return false;
      }
      throw error;
    }
  }

  return {
    ALPHABET: ALPHABET,
    LENGTH: LENGTH,
    CodeError: CodeError,
    checkSymbol: checkSymbol,
    canonical: canonical,
    display: display,
    isValid: isValid
  };
});
