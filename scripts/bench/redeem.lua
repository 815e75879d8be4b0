-- wrk script for scripts/bench_redeem.py: every request redeems a distinct coupon.
--
--   wrk -t2 -c16 -d20s --latency -s scripts/bench/redeem.lua http://127.0.0.1:PORT \
--       -- MODE CODES_FILE NTHREADS [SCANNER_KEY STORE_ID [IDEMPOTENCY]]
--
-- MODE "ours": POST /api/v1/redemptions with {"code", "store_id"} and the scanner key
--              (IDEMPOTENCY "1" adds an Idempotency-Key header per request);
-- MODE "thin": an empty POST /redeem/<code> to scripts/bench/thin_redeem.py.
-- CODES_FILE holds one code a line; thread i (0-based) takes the lines whose 0-based
-- index is i modulo NTHREADS, so no coupon is sent twice. Requests are built in init(),
-- so request() is a table lookup. A thread whose codes run out stops itself, and
-- done() says so: size the file for the duration. done() prints one line
-- "WRK_RESULT {json}" with every HTTP status counted (non-2xx included), the
-- latency percentiles of all requests, and how many codes were loaded and sent.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

local requests_ = {}
local next_ = 1
local loaded = 0
statuses = {}
sent = 0
extra = 0
exhausted = false

function init(args)
   local mode, codes_file, nthreads = args[1], args[2], tonumber(args[3])
   if mode ~= "ours" and mode ~= "thin" then
      error("first script argument must be 'ours' or 'thin', got " .. tostring(mode))
   end
   if not codes_file or not nthreads or nthreads < 1 then
      error("usage: -- MODE CODES_FILE NTHREADS [SCANNER_KEY STORE_ID [IDEMPOTENCY]]")
   end
   local key, store_id, idem = args[4], args[5], args[6] == "1"
   local file = assert(io.open(codes_file, "r"))
   local index = 0
   for line in file:lines() do
      local code = line:match("^%s*(.-)%s*$")
      if code ~= "" then
         if index % nthreads == tid then
            local req
            if mode == "ours" then
               local headers = {
                  ["Authorization"] = "Bearer " .. key,
                  ["Content-Type"] = "application/json",
               }
               if idem then
                  headers["Idempotency-Key"] = "bench-redeem-" .. code
               end
               local body = '{"code": "' .. code .. '", "store_id": "' .. store_id .. '"}'
               req = wrk.format("POST", "/api/v1/redemptions", headers, body)
            else
               req = wrk.format("POST", "/redeem/" .. code, {["Content-Length"] = "0"}, nil)
            end
            loaded = loaded + 1
            requests_[loaded] = req
         end
         index = index + 1
      end
   end
   file:close()
   codes_loaded = loaded
end

function request()
   local req = requests_[next_]
   if req == nil then
      -- Out of codes: stop this thread. wrk still wants a request string; the
      -- answer to it is counted under "extra", not as a redemption.
      exhausted = true
      wrk.thread:stop()
      return requests_[loaded]
   end
   next_ = next_ + 1
   return req
end

function response(status, headers, body)
   if exhausted then
      extra = extra + 1
      return
   end
   sent = sent + 1
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   local loaded_all, sent_all, extra_all, exhausted_threads = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses") or {}) do
         total[status] = (total[status] or 0) + count
      end
      loaded_all = loaded_all + (thread:get("codes_loaded") or 0)
      sent_all = sent_all + (thread:get("sent") or 0)
      extra_all = extra_all + (thread:get("extra") or 0)
      if thread:get("exhausted") then
         exhausted_threads = exhausted_threads + 1
      end
   end
   local parts = {}
   for status, count in pairs(total) do
      table.insert(parts, string.format('"%d": %d', status, count))
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"duration_us": %d, "requests": %d, "statuses": {%s}, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "p999": %d, "mean": %.1f, "max": %d}, ' ..
      '"codes_loaded": %d, "answered": %d, "extra": %d, "exhausted_threads": %d}\n',
      summary.duration, summary.requests, table.concat(parts, ", "),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.mean, latency.max,
      loaded_all, sent_all, extra_all, exhausted_threads))
end
