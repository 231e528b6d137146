-- The wrk script of every load the timeslots bench runs (bench/README.md).
--
-- wrk is given the path of a data file after the URL. That file, written by
-- the bench (load.luaData in wrk.go), returns the load as one table:
--   method, headers  the requests' method and headers
--   paths            each request's path, with its query
--   bodies           each request's body (false: none); absent when none has one
--   deal             false: every request draws one of them at random;
--                    true: each is sent once, dealt to the threads in turn
--   threads          how many threads wrk runs
--   status, rules    the check every answer must pass: that HTTP status, and
--                    for each rule {what, text, min, max, want} a body that
--                    holds text between min and max times (max < 0: no bound)
-- check() below is answerCheck.verify of endpoints.go, failure wording
-- included, so either load generator judges an answer alike.
--
-- A deal load ends by itself: a thread whose share has all been answered
-- prints "wrk-thread-done" and stops, and the bench interrupts wrk once
-- every thread has. done() prints the lines the bench reads (parseWrk).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")

-- now_us answers the monotonic clock in microseconds.
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

-- The main state's list of threads, for done().
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

-- Each thread's results, read by done() through thread:get: how many
-- answers failed and the first failure, and a deal thread's first request
-- and last answer on the monotonic clock.
failed, first_error, first_us, last_us = 0, "", 0, 0

local status, rules

local function fail(msg)
  failed = failed + 1
  if first_error == "" then first_error = msg end
end

-- head is the start of a body as a failure quotes it: its first 200 bytes,
-- each control character (a line break, a NUL) written as a space.
local function head(body)
  return (body:sub(1, 200):gsub("%c", " "))
end

-- check counts the answer as failed unless it has the wanted status and
-- its body holds each rule's text a wanted number of times.
local function check(code, body)
  if code ~= status then return fail("HTTP " .. code .. ": " .. head(body)) end
  for _, r in ipairs(rules) do
    local n, i = 0, 1
    while true do
      local j = body:find(r.text, i, true)
      if not j then break end
      n, i = n + 1, j + #r.text
    end
    if n < r.min or (r.max >= 0 and n > r.max) then
      return fail(r.what .. " " .. n .. ", want " .. r.want .. ": " .. head(body))
    end
  end
end

-- A draw load: every request, ready to send.
local all

local function draw_request()
  return all[math.random(#all)]
end

local function draw_response(code, headers, body)
  check(code, body)
end

-- A deal load: this thread's share of the requests, ready to send. A
-- request waits for a turn from delay(), which a connection is refused
-- once its thread's share is all sent: it then idles until the end.
-- (wrk also calls request() once before the load to check the script;
-- that call has no turn and sends nothing.)
local mine, turns, sent, answered = {}, 0, 0, 0

local function deal_delay()
  if sent + turns < #mine then
    turns = turns + 1
    return 0
  end
  return 3600000
end

local function deal_request()
  if turns == 0 then return mine[1] end
  turns, sent = turns - 1, sent + 1
  if sent == 1 then first_us = now_us() end
  return mine[sent]
end

local function deal_response(code, headers, body)
  answered = answered + 1
  check(code, body)
  if answered == #mine then
    last_us = now_us()
    io.write("wrk-thread-done\n")
    io.flush()
    wrk.thread:stop()
  end
end

-- init loads the data and sets request, response (and delay for a deal
-- load), which wrk looks for after the first thread's init.
function init(args)
  local data = dofile(args[1])
  status, rules = data.status, data.rules
  local function format(i)
    local body = data.bodies and data.bodies[i] or nil
    return wrk.format(data.method, data.paths[i], data.headers, body)
  end
  if data.deal then
    for i = tid, #data.paths, data.threads do mine[#mine + 1] = format(i) end
    request, response, delay = deal_request, deal_response, deal_delay
  else
    all = {}
    for i = 1, #data.paths do all[i] = format(i) end
    math.randomseed(os.time() * 1000 + tid)
    request, response = draw_request, draw_response
  end
end

-- done prints the counts, the span from the first request to the last
-- answer (deal loads), wrk's latency histogram (see undoWrkCorrection in
-- wrk.go) and wrk's CPU time until then (reading the histogram out scans
-- it once per distinct latency).
function done(summary, latency, requests)
  local cpu = os.clock() -- the process's, before the histogram is read out
  local failed, first, t0, t1 = 0, "", 0, 0
  for _, t in ipairs(threads) do
    failed = failed + t:get("failed")
    if first == "" then first = t:get("first_error") end
    local a, b = t:get("first_us") or 0, t:get("last_us") or 0
    if a > 0 and (t0 == 0 or a < t0) then t0 = a end
    if b > t1 then t1 = b end
  end
  local e = summary.errors
  io.write(string.format("wrk-result requests=%d duration_us=%d failed=%d connect=%d read=%d write=%d timeout=%d span_us=%d wrk_p99_us=%d cpu_us=%d\n",
    summary.requests, summary.duration, failed, e.connect, e.read, e.write, e.timeout,
    (t0 > 0 and t1 > t0) and (t1 - t0) or 0, latency:percentile(99), math.floor(cpu * 1000000)))
  local hist = {}
  for i = 1, #latency do
    local v, c = latency(i)
    hist[i] = string.format("%d:%d", v, c)
  end
  io.write("wrk-latency " .. table.concat(hist, " ") .. "\n")
  io.write("wrk-first-error " .. first .. "\n")
end
