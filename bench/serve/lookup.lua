-- wrk script: GET /m/lookup?signal_type=pdq&signal=HEX cycling through a query file.
--   CORDON_KEY=ck_... QUERIES=queries.txt WRK_JSON=out.json wrk -s lookup.lua URL
-- QUERIES holds one 64-hex PDQ hash per line. Every wrk thread starts at its own offset.
-- done() writes the summary and latency percentiles (microseconds) to WRK_JSON.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local requests = {}
local i = 1

function init(args)
   local key = os.getenv("CORDON_KEY") or error("CORDON_KEY is not set")
   local file = os.getenv("QUERIES") or error("QUERIES is not set")
   wrk.headers["Authorization"] = "Bearer " .. key
   for line in io.lines(file) do
      local hex = line:match("^%s*(%x+)%s*$")
      if hex then
         table.insert(requests, wrk.format("GET", "/m/lookup?signal_type=pdq&signal=" .. hex))
      end
   end
   if #requests == 0 then error("no queries in " .. file) end
   -- spread the threads over the query list
   i = ((id or 0) * 7919) % #requests + 1
end

function request()
   local r = requests[i]
   i = i + 1
   if i > #requests then i = 1 end
   return r
end

function done(summary, latency, requests)
   local out = os.getenv("WRK_JSON")
   if not out then return end
   local f = assert(io.open(out, "w"))
   local e = summary.errors
   f:write("{\n")
   f:write(string.format('  "duration_us": %d,\n', summary.duration))
   f:write(string.format('  "requests": %d,\n', summary.requests))
   f:write(string.format('  "bytes": %d,\n', summary.bytes))
   f:write(string.format('  "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d},\n',
      e.connect, e.read, e.write, e.status, e.timeout))
   f:write(string.format('  "latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d',
      latency.min, latency.mean, latency.stdev, latency.max))
   for _, p in ipairs({50, 75, 90, 99, 99.9}) do
      f:write(string.format(', "p%s": %d', tostring(p), latency:percentile(p)))
   end
   f:write("}\n}\n")
   f:close()
end
