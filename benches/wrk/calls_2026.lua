-- wrk script: stateless 2026-07-28 tools/call over streamable HTTP (no session; _meta and
-- Mcp-* headers per request). TOOL names the tool. Prints one line:
-- RESULT requests=… errors=… rps=… p50_ms=… p99_ms=…
-- From the project's shared load tools (mcp_call_modern.lua), with one addition: VIA=call_tool
-- calls TOOL through the tool search's call_tool.
local tool = os.getenv("TOOL") or "echo"
local via = os.getenv("VIA") or ""
local called, arguments = tool, '{"message":"hello"}'
if via ~= "" then
  called, arguments = via, '{"name":"' .. tool .. '","arguments":' .. arguments .. '}'
end
local counter, tid, errors = 0, 0, 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function request()
  counter = counter + 1
  local body = '{"jsonrpc":"2.0","id":' .. (tid * 100000000 + counter) ..
    ',"method":"tools/call","params":{"name":"' .. called .. '","arguments":' .. arguments .. ',"_meta":{' ..
    '"io.modelcontextprotocol/protocolVersion":"2026-07-28",' ..
    '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},' ..
    '"io.modelcontextprotocol/clientCapabilities":{}}}}'
  local h = {["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream",
             ["MCP-Protocol-Version"] = "2026-07-28", ["Mcp-Method"] = "tools/call", ["Mcp-Name"] = called}
  return wrk.format("POST", nil, h, body)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, 'hello', 1, true) then
    errors = errors + 1
    if errors < 3 then io.stderr:write(status .. " " .. string.sub(body, 1, 300) .. "\n") end
  end
end
function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do e = e + (t:get("errors") or 0) end
  io.write(string.format("RESULT requests=%d errors=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, e, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
