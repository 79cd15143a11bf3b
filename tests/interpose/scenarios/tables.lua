-- tables.lua — a Lua workload (tables, strings, sort, closures, gc) with deterministic output.
local seed = 7
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end

local t, words = {}, {}
for i = 1, 100000 do
  local parts = {}
  for k = 1, 3 + rnd(8) do parts[k] = string.char(97 + rnd(26)) end
  local w = table.concat(parts)
  words[#words + 1] = w
  local e = t[w]
  if not e then e = { word = w, n = 0, at = {} }; t[w] = e end
  e.n = e.n + 1
  e.at[#e.at + 1] = i
end
local list = {}
for _, e in pairs(t) do list[#list + 1] = e end
table.sort(list, function(a, b) if a.n ~= b.n then return a.n > b.n end return a.word < b.word end)
local sum = 0
for i, e in ipairs(list) do sum = (sum * 31 + #e.word * e.n + i) % 1000000007 end
local counters = {}
for i = 1, 1000 do
  local c = 0
  counters[i] = function() c = c + i; return c end
end
local csum = 0
for r = 1, 50 do for i = 1, 1000 do csum = csum + counters[i]() end end
local s = {}
for i = 1, 20000 do s[#s + 1] = string.format("%05d:%s", i, words[i]) end
local joined = table.concat(s, "|")
local subs = select(2, joined:gsub("[aeiou]", "V"))
collectgarbage("collect")
print("distinct", #list)
print("top", list[1].word, list[1].n, list[2].word, list[2].n)
print("checksum", sum)
print("closures", csum)
print("joined", #joined, subs)
