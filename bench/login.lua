-- wrk script for bench/run-users.sh: POST /api/v1/auth/login with the JSON in BENCH_LOGIN_BODY
-- on every request, then the machine-readable line of bench/report.lua (BENCH_REPORT_LUA) and a
-- "LOGIN_STATUS" line: the count of each HTTP status and the first body of an answer other than
-- 200 (the response callback costs a Lua call per answer: nothing next to argon2id).
wrk.method = "POST"
wrk.body = assert(os.getenv("BENCH_LOGIN_BODY"), "BENCH_LOGIN_BODY is not set")
wrk.headers["Content-Type"] = "application/json"
dofile(assert(os.getenv("BENCH_REPORT_LUA"), "BENCH_REPORT_LUA is not set"))

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
codes, first_bad = {}, ""
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if status ~= 200 and first_bad == "" then first_bad = body:sub(1, 200):gsub("%s", " ") end
end
local report_done = done
done = function(summary, latency, requests)
  report_done(summary, latency, requests)
  local all, bad = {}, ""
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
    if bad == "" then bad = t:get("first_bad") end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = k .. "=" .. v end
  table.sort(parts)
  io.write("LOGIN_STATUS " .. table.concat(parts, " ") .. (bad ~= "" and (" first_other_body=" .. bad) or "") .. "\n")
end
