-- tickcast schema v1 records inside MoldUDP64, for Wireshark and tshark.
--
-- Wireshark's own MoldUDP64 dissector frames the packets (decode a port as MoldUDP64 with
-- `-d udp.port==31001,moldudp64`); this post-dissector reads each message block's payload as a
-- 64-byte tickcast record (docs/PROTOCOL.md) and adds every field, named as in
-- `tickcast decode --json`. Prices are decimal strings as in the JSON ("87.3900"), times both as
-- absolute times and as ns since the epoch; `tickcast.symbol` is learned from instrument
-- definitions seen earlier in the capture.
--
--   tshark -X lua_script:tools/wireshark/tickcast.lua -d udp.port==31001,moldudp64 \
--     -Y 'tickcast.kind == "order_add" && tickcast.symbol == "MSFT"' -T fields -e tickcast.price
--
-- Install for Wireshark: copy this file into ~/.local/lib/wireshark/plugins/.

local p = Proto("tickcast", "tickcast normalized record (schema v1)")

local KINDS = {
  [1] = "instrument_definition", [2] = "order_add", [3] = "order_replace",
  [4] = "order_cancel", [5] = "order_delete", [6] = "order_executed",
  [7] = "order_executed_with_price", [8] = "trade", [9] = "cross_trade",
  [10] = "broken_trade", [11] = "trading_status", [12] = "system_event",
  [13] = "imbalance", [14] = "top_of_book", [15] = "feed_status",
}

local f = {}
local function add(name, ftype, desc)
  f[name] = ftype("tickcast." .. name, desc or name)
end
add("version", ProtoField.uint8)
add("kind", ProtoField.string)
add("kind_code", ProtoField.uint8)
add("seq", ProtoField.uint64, "MoldUDP64 sequence")
add("instrument", ProtoField.uint32)
add("symbol", ProtoField.string)
add("event_ts", ProtoField.absolute_time, "exchange event time")
add("event_ts_ns", ProtoField.uint64, "exchange event time, ns since the epoch")
add("recv_ts", ProtoField.absolute_time, "feed handler receive time")
add("recv_ts_ns", ProtoField.uint64, "feed handler receive time, ns since the epoch")
for _, n in ipairs({
  "order_id", "orig_order_id", "new_order_id", "match_number", "quantity",
  "cancelled_quantity", "remaining_quantity", "paired_shares", "imbalance_shares",
  "bid_quantity", "ask_quantity", "round_lot_size", "etp_leverage_factor", "first", "last",
}) do
  add(n, ProtoField.uint64)
end
for _, n in ipairs({
  "price", "level1", "level2", "level3", "far_price", "near_price", "reference_price",
  "bid_price", "ask_price",
}) do
  add(n, ProtoField.string, n .. " (decimal)")
end
for _, n in ipairs({
  "side", "attribution", "printable", "cross_type", "status_type", "state", "reason",
  "market_code", "source_type", "event_code", "direction", "market_category",
  "financial_status", "round_lots_only", "issue_classification", "issue_sub_type",
  "authenticity", "short_sale_threshold", "ipo_flag", "luld_tier", "etp_flag", "inverse",
  "status", "definition_symbol",
}) do
  add(n, ProtoField.string)
end
local fields = {}
for _, v in pairs(f) do
  fields[#fields + 1] = v
end
p.fields = fields

local msgdata = Field.new("moldudp64.msgdata")
local msgseq = Field.new("moldudp64.msgseq")

-- Symbols by instrument, learned from definitions in capture order.
local symbols = {}

local function trim(s)
  return (s:gsub("[%z ]+$", ""))
end

-- An ASCII field as the JSON shows it: trailing spaces and NULs dropped.
local function text(r)
  return trim(r:raw())
end

local SCALE = Int64(100000000)

-- i64 fixed point with 8 decimals, formatted as protocol's Price Display does.
local function price(r)
  local v = r:le_int64()
  local neg = v < Int64(0)
  if neg then
    v = -v
  end
  local int = v / SCALE
  local frac = v % SCALE
  local s
  if frac % Int64(10000) == Int64(0) then
    s = tostring(int) .. "." .. string.format("%04d", (frac / Int64(10000)):tonumber())
  else
    local digits = string.format("%08d", frac:tonumber())
    s = tostring(int) .. "." .. (digits:gsub("0+$", ""))
  end
  if neg then
    s = "-" .. s
  end
  return s
end

local function ns_time(r)
  local ns = r:le_uint64()
  local secs = (ns / UInt64(1000000000)):tonumber()
  local rem = (ns % UInt64(1000000000)):tonumber()
  return NSTime.new(secs, rem), ns
end

-- Each kind's body after the common header, in display order: how to show a field
-- ("le": little-endian integer, "str": ASCII, "prc": price with 8 decimals), its name, offset
-- and length.
local SHOW = {
  le = function(t, name, r) t:add_le(f[name], r) end,
  str = function(t, name, r) t:add(f[name], r, text(r)) end,
  prc = function(t, name, r) t:add(f[name], r, price(r)) end,
}

-- Executions (6 order_executed, 7 with price, 8 trade); 6 and 7 also say "printable".
local EXECUTION = {
  { "le", "order_id", 24, 8 }, { "le", "match_number", 32, 8 }, { "str", "side", 52, 1 },
  { "le", "quantity", 48, 4 }, { "prc", "price", 40, 8 },
}
local BODY = {
  [1] = {
    { "str", "definition_symbol", 24, 8 }, { "le", "round_lot_size", 32, 4 },
    { "le", "etp_leverage_factor", 36, 4 }, { "str", "market_category", 40, 1 },
    { "str", "financial_status", 41, 1 }, { "str", "round_lots_only", 42, 1 },
    { "str", "issue_classification", 43, 1 }, { "str", "issue_sub_type", 44, 2 },
    { "str", "authenticity", 46, 1 }, { "str", "short_sale_threshold", 47, 1 },
    { "str", "ipo_flag", 48, 1 }, { "str", "luld_tier", 49, 1 }, { "str", "etp_flag", 50, 1 },
    { "str", "inverse", 51, 1 }, { "str", "source_type", 52, 1 },
  },
  [2] = {
    { "le", "order_id", 24, 8 }, { "str", "side", 44, 1 }, { "le", "quantity", 40, 4 },
    { "prc", "price", 32, 8 }, { "str", "attribution", 45, 4 },
  },
  [3] = {
    { "le", "orig_order_id", 24, 8 }, { "le", "new_order_id", 32, 8 }, { "str", "side", 52, 1 },
    { "le", "quantity", 48, 4 }, { "prc", "price", 40, 8 },
  },
  [4] = {
    { "le", "order_id", 24, 8 }, { "str", "side", 40, 1 }, { "le", "cancelled_quantity", 32, 4 },
    { "le", "remaining_quantity", 36, 4 },
  },
  [5] = {
    { "le", "order_id", 24, 8 }, { "str", "side", 32, 1 },
  },
  [9] = {
    { "le", "match_number", 24, 8 }, { "le", "quantity", 32, 8 }, { "prc", "price", 40, 8 },
    { "str", "cross_type", 48, 1 },
  },
  [10] = {
    { "le", "match_number", 24, 8 },
  },
  [11] = {
    { "str", "status_type", 24, 1 }, { "str", "state", 25, 1 }, { "str", "reason", 26, 4 },
    { "str", "market_code", 30, 1 },
  },
  [12] = {
    { "str", "source_type", 24, 1 }, { "str", "event_code", 25, 1 }, { "prc", "level1", 32, 8 },
    { "prc", "level2", 40, 8 }, { "prc", "level3", 48, 8 },
  },
  [13] = {
    { "le", "paired_shares", 24, 8 }, { "le", "imbalance_shares", 32, 8 },
    { "str", "direction", 2, 1 }, { "str", "cross_type", 3, 1 }, { "prc", "far_price", 40, 8 },
    { "prc", "near_price", 48, 8 }, { "prc", "reference_price", 56, 8 },
  },
  [14] = {
    { "prc", "bid_price", 24, 8 }, { "le", "bid_quantity", 32, 8 }, { "prc", "ask_price", 40, 8 },
    { "le", "ask_quantity", 48, 8 },
  },
  [15] = {
    { "str", "status", 24, 1 }, { "le", "first", 32, 8 }, { "le", "last", 40, 8 },
  },
}

BODY[8] = EXECUTION
BODY[6] = { table.unpack(EXECUTION) }
table.insert(BODY[6], { "str", "printable", 53, 1 })
BODY[7] = BODY[6]

local function body(t, kind, b)
  for _, x in ipairs(BODY[kind] or {}) do
    SHOW[x[1]](t, x[2], b(x[3], x[4]))
  end
end

function p.dissector(_, pinfo, tree)
  local data = { msgdata() }
  if #data == 0 then
    return
  end
  local seqs = { msgseq() }
  for i, fi in ipairs(data) do
    local r = fi.range
    if r ~= nil and r:len() == 64 and r(0, 1):uint() == 1 then
      local kind = r(1, 1):uint()
      local name = KINDS[kind]
      if name ~= nil then
        local t = tree:add(p, r, "tickcast " .. name)
        t:add(f.version, r(0, 1))
        t:add(f.kind, r(1, 1), name)
        t:add(f.kind_code, r(1, 1))
        if seqs[i] ~= nil then
          t:add(f.seq, seqs[i].range, seqs[i].value)
        end
        t:add_le(f.instrument, r(4, 4))
        local instrument = r(4, 4):le_uint()
        if kind == 1 then
          symbols[instrument] = text(r(24, 8))
        end
        t:add(f.symbol, r(4, 4), symbols[instrument] or "")
        local et, etn = ns_time(r(8, 8))
        t:add(f.event_ts, r(8, 8), et)
        t:add(f.event_ts_ns, r(8, 8), etn)
        local rt, rtn = ns_time(r(16, 8))
        t:add(f.recv_ts, r(16, 8), rt)
        t:add(f.recv_ts_ns, r(16, 8), rtn)
        body(t, kind, r)
      end
    end
  end
  pinfo.cols.protocol:set("tickcast")
end

register_postdissector(p, true)
