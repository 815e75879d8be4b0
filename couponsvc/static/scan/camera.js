/* The camera and the QR decoder.
 *
 * The rear camera through getUserMedia; each frame is decoded by the browser's
 * BarcodeDetector only where it really reads QR codes (getSupportedFormats() lists
 * "qr_code": Chromium on Linux has the object but reads nothing, and some in-app browsers
 * throw), else by zxing-wasm, vendored, whose .wasm the app serves itself. A frame is
 * grabbed only when the decoder is free, so a slow phone decodes as often as it can and
 * never queues frames. `onText(text, grabbedAt)` gets each decoded text with the time
 * (performance.now()) its frame was grabbed.
 */
(function (root) {
  "use strict";

  var MAX_SIDE = 800; // pixels of the longer side handed to the decoder

  function barcodeDetector(scope) {
    var Detector = scope.BarcodeDetector;
    if (typeof Detector !== "function" || typeof Detector.getSupportedFormats !== "function") {
      return Promise.resolve(null);
    }
    return Promise.resolve().then(function () {
      return Detector.getSupportedFormats();
    }).then(function (formats) {
      if (!formats || formats.indexOf("qr_code") < 0) {
        return null;
      }
      var detector = new Detector({ formats: ["qr_code"] });
      return {
        name: "BarcodeDetector",
        decode: function (video) {
          return detector.detect(video).then(function (found) {
            return found.map(function (code) { return code.rawValue; });
          });
        }
      };
    })["catch"](function () {
      return null;
    });
  }

  function zxing(scope, wasmUrl) {
    var lib = scope.ZXingWASM;
    if (!lib) {
      return Promise.resolve(null);
    }
    var canvas = scope.document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var options = { formats: ["QRCode"], tryHarder: true, maxNumberOfSymbols: 1 };
    // Never the library's default, a CDN: the app serves the .wasm itself.
    return Promise.resolve(lib.prepareZXingModule({
      overrides: {
        locateFile: function (path, prefix) {
          return /\.wasm$/.test(path) ? wasmUrl : prefix + path;
        }
      },
      fireImmediately: true
    })).then(function () {
      return {
        name: "zxing-wasm",
        decode: function (video) {
          var width = video.videoWidth;
          var height = video.videoHeight;
          var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
          canvas.width = Math.round(width * scale);
          canvas.height = Math.round(height * scale);
          context.drawImage(video, 0, 0, canvas.width, canvas.height);
          var image = context.getImageData(0, 0, canvas.width, canvas.height);
          return lib.readBarcodes(image, options).then(function (found) {
            return found.filter(function (code) { return code.isValid; }).map(function (code) { return code.text; });
          });
        }
      };
    }, function () {
      return null;
    });
  }

  /* The best decoder this browser has: BarcodeDetector if it reads QR codes, else zxing. */
  function chooseDecoder(scope, wasmUrl) {
    return barcodeDetector(scope).then(function (native) {
      return native || zxing(scope, wasmUrl);
    });
  }

  function start(scope, video, options) {
    var media = scope.navigator.mediaDevices;
    if (!media || typeof media.getUserMedia !== "function") {
      return Promise.reject(new Error("no camera API (the page needs https)"));
    }
    var stopped = false;
    var stream = null;
    var decoderPromise = chooseDecoder(scope, options.wasm);
    var camera = {
      decoder: null,
      stop: function () {
        stopped = true;
        if (stream) {
          stream.getTracks().forEach(function (track) { track.stop(); });
        }
        video.srcObject = null;
      }
    };
    return media.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } }
    }).then(function (given) {
      stream = given;
      if (stopped) {
        camera.stop();
        return camera;
      }
      video.setAttribute("playsinline", "");
      video.muted = true;
      video.srcObject = stream;
      return Promise.resolve(video.play())["catch"](function () {}).then(function () {
        return decoderPromise;
      }).then(function (decoder) {
        if (!decoder) {
          throw new Error("no QR decoder could be loaded");
        }
        camera.decoder = decoder.name;
        loop(decoder);
        return camera;
      });
    });

    function loop(decoder) {
      function next() {
        if (!stopped) {
          scope.requestAnimationFrame(tick);
        }
      }
      function tick() {
        if (stopped) {
          return;
        }
        if (video.readyState < 2 || !video.videoWidth) {
          scope.setTimeout(next, 50);
          return;
        }
        var grabbedAt = scope.performance.now();
        decoder.decode(video).then(function (texts) {
          texts.forEach(function (text) {
            options.onText(text, grabbedAt);
          });
        }, function () {})["finally"](next);
      }
      next();
    }
  }

  root.CouponCamera = { start: start, chooseDecoder: chooseDecoder };
})(typeof self !== "undefined" ? self : this);
