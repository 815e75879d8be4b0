/* What the till keeps on the device, in IndexedDB: it survives a reload and works offline.
 *
 *   kv        key → value: the scanner key, who it is (GET /whoami), the store chosen, the
 *             device id, the QR public keys (GET /qr-keys), the revocation cursor
 *   revoked   codes voided or refunded (GET /revocations, read incrementally)
 *   accepted  code → uses this device took (online or offline), so that offline a coupon
 *             is not accepted twice here
 *   queue     scans accepted offline, by nonce, until the server has answered for them
 *
 * The interface is the `storage` that till.js expects; `memoryStorage` is the same in
 * memory, for a browser that refuses IndexedDB (a private window of some browsers).
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.CouponStore = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var NAME = "couponsvc-scan";
  var VERSION = 1;

  function promised(request) {
    return new Promise(function (resolve, reject) {
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function openDatabase(indexedDB) {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = function () {
        var db = request.result;
        db.createObjectStore("kv");
        db.createObjectStore("revoked");
        db.createObjectStore("accepted", { keyPath: "code" });
        db.createObjectStore("queue", { keyPath: "nonce" });
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
      request.onblocked = function () { reject(new Error("IndexedDB is blocked")); };
    });
  }

  function idbStorage(db) {
    function run(name, mode, work) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(name, mode);
        var result;
        Promise.resolve(work(tx.objectStore(name))).then(function (value) { result = value; }, reject);
        tx.oncomplete = function () { resolve(result); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error || new Error("transaction aborted")); };
      });
    }
    return {
      kind: "indexeddb",
      get: function (key) {
        return run("kv", "readonly", function (s) { return promised(s.get(key)); });
      },
      set: function (key, value) {
        return run("kv", "readwrite", function (s) { s.put(value, key); });
      },
      remove: function (key) {
        return run("kv", "readwrite", function (s) { s["delete"](key); });
      },
      isRevoked: function (code) {
        return run("revoked", "readonly", function (s) { return promised(s.count(code)); }).then(function (n) {
          return n > 0;
        });
      },
      addRevoked: function (codes) {
        return run("revoked", "readwrite", function (s) {
          codes.forEach(function (code) { s.put(1, code); });
        });
      },
      acceptedUses: function (code) {
        return run("accepted", "readonly", function (s) { return promised(s.get(code)); }).then(function (row) {
          return row ? row.uses : 0;
        });
      },
      addAccepted: function (code, uses, at) {
        return run("accepted", "readwrite", function (s) {
          return promised(s.get(code)).then(function (row) {
            var total = Math.max(0, (row ? row.uses : 0) + uses);
            s.put({ code: code, uses: total, at: at });
          });
        });
      },
      queued: function () {
        return run("queue", "readonly", function (s) { return promised(s.getAll()); }).then(function (items) {
          return items.sort(function (a, b) { return a.scanned_at < b.scanned_at ? -1 : a.scanned_at > b.scanned_at ? 1 : 0; });
        });
      },
      putQueued: function (item) {
        return run("queue", "readwrite", function (s) { s.put(item); });
      },
      forgetDone: function (olderThan) {
        return run("queue", "readwrite", function (s) {
          return promised(s.getAll()).then(function (items) {
            items.forEach(function (item) {
              if (item.state !== "waiting" && item.uploaded_at && item.uploaded_at < olderThan) {
                s["delete"](item.nonce);
              }
            });
          });
        });
      },
      clearSession: function () {
        // Signing out forgets the key and who it is; the device id and anything not yet
        // uploaded stay.
        return run("kv", "readwrite", function (s) {
          ["key", "context", "storeId"].forEach(function (key) { s["delete"](key); });
        });
      }
    };
  }

  function memoryStorage() {
    var kv = {};
    var revoked = {};
    var accepted = {};
    var queue = {};
    function later(value) { return Promise.resolve(value); }
    function copy(value) { return value === undefined ? undefined : JSON.parse(JSON.stringify(value)); }
    return {
      kind: "memory",
      get: function (key) { return later(copy(kv[key])); },
      set: function (key, value) { kv[key] = copy(value); return later(); },
      remove: function (key) { delete kv[key]; return later(); },
      isRevoked: function (code) { return later(!!revoked[code]); },
      addRevoked: function (codes) { codes.forEach(function (code) { revoked[code] = 1; }); return later(); },
      acceptedUses: function (code) { return later(accepted[code] ? accepted[code].uses : 0); },
      addAccepted: function (code, uses, at) {
        accepted[code] = { code: code, uses: Math.max(0, (accepted[code] ? accepted[code].uses : 0) + uses), at: at };
        return later();
      },
      queued: function () {
        return later(Object.keys(queue).map(function (n) { return copy(queue[n]); }).sort(function (a, b) {
          return a.scanned_at < b.scanned_at ? -1 : a.scanned_at > b.scanned_at ? 1 : 0;
        }));
      },
      putQueued: function (item) { queue[item.nonce] = copy(item); return later(); },
      forgetDone: function () { return later(); },
      clearSession: function () { delete kv.key; delete kv.context; delete kv.storeId; return later(); }
    };
  }

  /* IndexedDB where the browser gives it, else memory (the page says scans would not
   * survive a reload). */
  function open(scope) {
    var indexedDB = scope && scope.indexedDB;
    if (!indexedDB) {
      return Promise.resolve(memoryStorage());
    }
    return openDatabase(indexedDB).then(idbStorage, function () {
      return memoryStorage();
    });
  }

  return { open: open, memoryStorage: memoryStorage, NAME: NAME };
});
