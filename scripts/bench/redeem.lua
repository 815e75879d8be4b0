-- wrk script of scripts/bench_redeem.py: every request redeems a distinct coupon.
--   wrk ... -s redeem.lua URL -- MODE CODES_FILE NTHREADS [SCANNER_KEY STORE_ID [IDEMPOTENCY]]
-- MODE "ours": POST /api/v1/redemptions (IDEMPOTENCY "1" adds an Idempotency-Key per request;
-- a line that is a QR payload, "CPN1.<code>....", is sent as {"qr"}, any other as {"code"});
-- "thin": POST /redeem/<code> to thin_redeem.py. Thread i takes the codes whose index is i
-- modulo NTHREADS; a thread out of codes stops. done() prints "WRK_RESULT {json}": every
-- status counted, latency percentiles of all requests, codes loaded and answered.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

local requests_, next_, loaded = {}, 1, 0
statuses, sent, extra, exhausted = {}, 0, 0, false

function init(args)
   local mode, codes_file, nthreads = args[1], args[2], tonumber(args[3])
   if (mode ~= "ours" and mode ~= "thin") or not codes_file or not nthreads or nthreads < 1 then
      error("usage: -- ours|thin CODES_FILE NTHREADS [SCANNER_KEY STORE_ID [IDEMPOTENCY]]")
   end
   local key, store_id, idem = args[4], args[5], args[6] == "1"
   local index = 0
   for line in io.lines(codes_file) do
      local code = line:match("^%s*(.-)%s*$")
      if code ~= "" then
         if index % nthreads == tid then
            local req
            if mode == "ours" then
               local headers = {["Authorization"] = "Bearer " .. key,
                                ["Content-Type"] = "application/json"}
               local field = code:sub(1, 5) == "CPN1." and "qr" or "code"
               if idem then headers["Idempotency-Key"] = "bench-redeem-" .. code:sub(1, 200) end
               req = wrk.format("POST", "/api/v1/redemptions", headers,
                                '{"' .. field .. '": "' .. code .. '", "store_id": "' .. store_id .. '"}')
            else
               req = wrk.format("POST", "/redeem/" .. code, {["Content-Length"] = "0"}, nil)
            end
            loaded = loaded + 1
            requests_[loaded] = req
         end
         index = index + 1
      end
   end
   codes_loaded = loaded
end

function request()
   local req = requests_[next_]
   if req == nil then  -- out of codes: the answer to this last request counts as "extra"
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
   else
      sent = sent + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total, parts = {}, {}
   local loaded_all, sent_all, extra_all, exhausted_threads = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses") or {}) do
         total[status] = (total[status] or 0) + count
      end
      loaded_all = loaded_all + (thread:get("codes_loaded") or 0)
      sent_all = sent_all + (thread:get("sent") or 0)
      extra_all = extra_all + (thread:get("extra") or 0)
      if thread:get("exhausted") then exhausted_threads = exhausted_threads + 1 end
   end
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
