// The browser's check character (couponsvc/static/scan/codes.js) against the vectors that
// couponsvc/codes.py generated (tests/vectors/codes.json). Run: node --test tests/js/
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const fs = require("node:fs");

const codes = require("../../couponsvc/static/scan/codes.js");
const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, "../vectors/codes.json"), "utf8"));

test("the alphabet and length are the server's", () => {
  assert.equal(codes.ALPHABET, vectors.alphabet);
  assert.equal(codes.LENGTH, vectors.length);
});

test("check symbols", () => {
  for (const { body, check } of vectors.check_symbols) {
    assert.equal(codes.checkSymbol(body), check, body);
  }
});

test("every typed input is canonicalised or refused for the server's reason", () => {
  assert.ok(vectors.cases.length > 50);
  for (const vector of vectors.cases) {
    if ("canonical" in vector) {
      assert.equal(codes.canonical(vector.input), vector.canonical, JSON.stringify(vector.input));
      assert.equal(codes.isValid(vector.input), true);
    } else {
      assert.throws(() => codes.canonical(vector.input),
        (error) => error instanceof codes.CodeError && error.reason === vector.reason,
        JSON.stringify(vector));
      assert.equal(codes.isValid(vector.input), false);
    }
  }
});

test("display groups a code in fours", () => {
  for (const { input, display } of vectors.display) {
    assert.equal(codes.display(input), display);
  }
});

test("every substitution of a valid code fails its check", () => {
  const code = vectors.cases.find((v) => "canonical" in v).canonical;
  for (let p = 0; p < code.length; p++) {
    for (const symbol of codes.ALPHABET) {
      if (symbol !== code[p]) {
        const typo = code.slice(0, p) + symbol + code.slice(p + 1);
        assert.throws(() => codes.canonical(typo), (e) => e.reason === "check", typo);
      }
    }
  }
});

test("a non-string is refused, not thrown as a TypeError", () => {
  assert.throws(() => codes.canonical(undefined), (e) => e instanceof codes.CodeError);
});
