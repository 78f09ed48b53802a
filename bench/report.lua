-- wrk script for bench/run.sh and bench/run-pg.sh: prints one machine-readable line after the
-- run. Latencies are in microseconds (wrk's unit); non2xx counts answers outside 200-399.
--
-- With BENCH_PATHS set to a file of request paths (one a line), the requests of each wrk thread
-- go through those paths in turn (all starting with the first, so every server gets the same
-- sequence); without it, wrk sends the URL's path every time (its fast path, no Lua call per
-- request).
local paths_file = os.getenv("BENCH_PATHS")
if paths_file and paths_file ~= "" then
  local reqs, n, i = {}, 0, 0
  init = function(args)
    for line in io.lines(paths_file) do
      if line ~= "" then
        n = n + 1
        reqs[n] = wrk.format("GET", line)
      end
    end
    assert(n > 0, "no paths in " .. paths_file)
  end
  request = function()
    i = i % n + 1
    return reqs[i]
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d non2xx=%d bytes=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, summary.bytes))
end
