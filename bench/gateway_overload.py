"""The overload run of bench.gateway: a paced wrk offering a fixed request rate while long streams stay open.

wrk is closed-loop (each connection sends its next request when the last is answered), so an overloaded server
slows its own load down. Here wrk's `delay()` hands out send slots from a per-thread schedule (one every
threads/rate seconds, read from the monotonic clock through LuaJIT's ffi), so the offered rate holds as long as some
connection is free, whatever the latency. Each request carries its send time in `Idempotency-Key` and the upstream
echoes it in `X-Ratelimit-Bench-Sent` (names the gateway's header allow-lists forward, each way); `response()` keeps
the latency of the admitted (200) answers apart from the refused ones, whose 503 comes from the gateway itself. The
script's `done()` prints one JSON line with the counts and the admitted latencies.
"""

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.gateway_streams import hold_streams

CHAT_BODY = '{"messages":[{"role":"user","content":"hi"}]}'

PACED_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local tokens = {{{tokens}}}
local interval_us = {interval_us}
local heads, tails = {{}}, {{}}  -- each token's request, split where the send time goes in
local next_slot, counter = 0, 0
sent = 0
statuses, admitted = {{}}, {{}}  -- globals, read by done() through thread:get
local threads = {{}}

function setup(thread) table.insert(threads, thread) end

function init(args)
  for i, token in ipairs(tokens) do
    local whole = wrk.format("POST", "/v1/chat/completions",
      {{["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}}, '{body}')
    local line_end = whole:find("\\r\\n", 1, true)
    heads[i] = whole:sub(1, line_end + 1) .. "Idempotency-Key: "
    tails[i] = "\\r\\n" .. whole:sub(line_end + 2)
  end
end

function delay()
  local now = now_us()
  if next_slot < now then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval_us
  return math.floor(wait / 1000)
end

function request()
  counter = counter % #tokens + 1
  sent = sent + 1
  return heads[counter] .. tostring(math.floor(now_us())) .. tails[counter]
end

function response(status, headers, _)
  statuses[status] = (statuses[status] or 0) + 1
  local stamp = headers["x-ratelimit-bench-sent"] or headers["X-Ratelimit-Bench-Sent"]
  if status == 200 and stamp then
    local bucket = math.floor((now_us() - tonumber(stamp)) / 100)  -- 0.1 ms buckets
    admitted[bucket] = (admitted[bucket] or 0) + 1
  end
end

function done(summary, _, _)
  local statuses_all, hist, count, sent_all = {{}}, {{}}, 0, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {{}}) do statuses_all[status] = (statuses_all[status] or 0) + n end
    for bucket, n in pairs(thread:get("admitted") or {{}}) do
      hist[bucket] = (hist[bucket] or 0) + n
      count = count + n
    end
    sent_all = sent_all + (thread:get("sent") or 0)
  end
  local buckets = {{}}
  for bucket in pairs(hist) do table.insert(buckets, bucket) end
  table.sort(buckets)
  local function pct(p)
    local want, seen = math.ceil(count * p), 0
    for _, bucket in ipairs(buckets) do
      seen = seen + hist[bucket]
      if seen >= want then return (bucket + 1) / 10 end
    end
    return -1
  end
  local parts = {{}}
  for status, n in pairs(statuses_all) do table.insert(parts, string.format('"%d": %d', status, n)) end
  local e = summary.errors
  io.write(string.format(
    '{{"seconds": %.3f, "sent": %d, "responses": %d, "statuses": {{%s}}, "socket_errors": %d, '
    .. '"admitted_p50_ms": %.1f, "admitted_p99_ms": %.1f, "admitted_max_ms": %.1f}}\\n',
    summary.duration / 1e6, sent_all, summary.requests, table.concat(parts, ", "),
    e.connect + e.read + e.write + e.timeout, pct(0.5), pct(0.99), count > 0 and (buckets[#buckets] + 1) / 10 or -1))
end
"""


def paced_wrk(
    port: int, tokens: list[str], *, rate: float, seconds: int, connections: int, script_dir: Path
) -> dict[str, float]:
    """Offer `rate` requests a second for `seconds` over `connections`; the counts and admitted latencies."""
    threads = 2
    script = script_dir / "paced.lua"
    script.write_text(
        PACED_SCRIPT.format(
            tokens=", ".join(f'"{t}"' for t in tokens), interval_us=threads / rate * 1e6, body=CHAT_BODY
        )
    )
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s"]
    text = subprocess.run(
        [*cmd, str(script), f"http://127.0.0.1:{port}/v1/chat/completions"], capture_output=True, text=True, check=True
    ).stdout
    raw = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    responses = max(1, raw["responses"])
    shed = statuses.get(503, 0)
    return {
        "offered_rps": round(rate),
        "sent_rps": round(raw["sent"] / raw["seconds"]),
        "achieved_rps": round(raw["responses"] / raw["seconds"]),
        "admitted_rps": round(statuses.get(200, 0) / raw["seconds"]),
        "admitted_p50_ms": raw["admitted_p50_ms"],
        "admitted_p99_ms": raw["admitted_p99_ms"],
        "admitted_max_ms": raw["admitted_max_ms"],
        "shed_ratio": round(shed / responses, 4),
        "5xx_other": sum(n for status, n in statuses.items() if status >= 500 and status != 503),
        "other_status": sum(n for status, n in statuses.items() if status not in (200, 503)),
        "socket_errors": raw["socket_errors"],
    }


def overload_with_streams(
    port: int,
    tokens: list[str],
    stream_tokens: list[str],
    *,
    rate: float,
    seconds: int,
    connections: int,
    streams: int,
    script_dir: Path,
) -> dict[str, float]:
    """The paced load while `streams` SSE streams (opened first) stay open through it; streams' losses added."""
    stream_seconds = seconds + 6  # 2 s of ramp-up, a second's margin either side of the load
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(hold_streams, port, stream_tokens, streams, stream_seconds)
        time.sleep(3)
        result = paced_wrk(port, tokens, rate=rate, seconds=seconds, connections=connections, script_dir=script_dir)
        stream_errors, events = held.result()
    return {
        **result,
        "stream_errors": stream_errors,
        "stream_events_lost": streams * (stream_seconds + 1) - events,
    }
