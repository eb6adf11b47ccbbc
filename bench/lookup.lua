-- wrk script for bench/serve and bench/nodes: GET /m/lookup?signal_type=pdq&signal=HEX
-- cycling through a query file. The JSON it writes holds the whole latency histogram too,
-- so that the runs of several wrk processes (one per node) can be merged into one
-- distribution.
--   CORDON_KEY=ck_... QUERIES=queries.txt WRK_JSON=out.json OFFSET=0 wrk -s lookup.lua URL
-- QUERIES holds one 64-hex PDQ hash per line. Every wrk thread (and every wrk process, by
-- OFFSET) starts at its own place in the list.

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
   local offset = tonumber(os.getenv("OFFSET") or "0")
   wrk.headers["Authorization"] = "Bearer " .. key
   for line in io.lines(file) do
      local hex = line:match("^%s*(%x+)%s*$")
      if hex then
         table.insert(requests, wrk.format("GET", "/m/lookup?signal_type=pdq&signal=" .. hex))
      end
   end
   if #requests == 0 then error("no queries in " .. file) end
   i = ((id or 0) * 7919 + offset) % #requests + 1
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
   f:write("},\n")
   -- latency(k) is the k-th distinct value (microseconds, ascending) and how many requests
   -- took it; past the last one it answers value 0 (and a count that is not 0).
   f:write('  "histogram_us": [')
   local k, sep, last = 1, "", -1
   while true do
      local value, count = latency(k)
      if value == nil or value <= last or count == 0 then break end
      f:write(string.format('%s[%d,%d]', sep, value, count))
      sep, last, k = ",", value, k + 1
   end
   f:write("]\n}\n")
   f:close()
end
