-- wrk script: rotate through pre-built requests, one file per wrk thread, and print the
-- latency distribution as one JSON line (prefix "WRK_JSON ") when the run is done.
--
--   wrk -s rotate.lua URL -- <requests-file-prefix> <bearer-token>
--
-- <prefix>.<thread-number> holds one request per line: METHOD<TAB>PATH[<TAB>BODY].
-- Each thread cycles through its own file in order, so a PATCH file that adds ids and later
-- removes them keeps the add/remove alternation even with many connections per thread.

local thread_count = 0

function setup(thread)
   thread:set("tid", thread_count)
   thread_count = thread_count + 1
end

function init(args)
   local prefix, token = args[1], args[2]
   local headers = { ["Accept"] = "application/scim+json" }
   if token and token ~= "" then
      headers["Authorization"] = "Bearer " .. token
   end
   reqs = {}
   for line in io.lines(prefix .. "." .. tid) do
      local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
      local h = headers
      if body ~= nil and body ~= "" then
         h = { ["Content-Type"] = "application/scim+json" }
         for k, v in pairs(headers) do h[k] = v end
      else
         body = nil
      end
      reqs[#reqs + 1] = wrk.format(method, path, h, body)
   end
   if #reqs == 0 then
      error("no requests in " .. prefix .. "." .. tid)
   end
   n = 0
end

function request()
   n = n + 1
   return reqs[((n - 1) % #reqs) + 1]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
      '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"mean_us":%.1f,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
