#!/usr/bin/env bash
# offline.sh TOOL SHIM — the commands that write heap files: gc (--dry-run and real), relocate,
# check --repair, on a heap a real program (python3) left, checked with `persist check` and info.
set -u
TOOL=$1 SHIM=$2
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
heap=$dir/p.heap
fail() { echo "FAIL: $*"; exit 1; }
for i in 1 2; do
  LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_GC=never /usr/bin/python3 -c "x = [str(i) * 3 for i in range(50000)]" ||
    fail "python3 under the shim"
done
out=$("$TOOL" gc --dry-run "$heap") || fail "gc --dry-run exited $?"
[[ $out == *"would free"* ]] || fail "gc --dry-run said: $out"
before=$(stat -c %s "$heap")
json=$("$TOOL" gc --json "$heap") || fail "gc exited $?"
freed=$(grep -o '"freed_blocks": *[0-9]*' <<<"$json" | grep -o '[0-9]*$')
[ "${freed:-0}" -gt 0 ] || fail "gc freed nothing: $json"
after=$(stat -c %s "$heap")
[ "$after" -le "$before" ] || fail "gc grew the file ($before -> $after)"
"$TOOL" check "$heap" >/dev/null || fail "check after gc"
"$TOOL" gc --dry-run "$heap" | grep -q "would free 0 blocks" || fail "a second gc would free more"

"$TOOL" relocate "$heap" --to 0x5c0000000000 >/dev/null || fail "relocate exited $?"
"$TOOL" info "$heap" | grep -q "base *0x5c0000000000" || fail "info does not show the new base"
"$TOOL" check "$heap" >/dev/null || fail "check after relocate"
"$TOOL" relocate "$heap" --to 0x123 >/dev/null 2>&1 && fail "relocate accepted an unaligned address"

# Damage a page descriptor of segment 0 (offset: page 1 header + 64, descriptor 20 is a data page).
printf '\x1a\x1a\x1a\x1a\x1a\x1a\x1a\x1a' | dd of="$heap" bs=1 seek=$((4096 + 64 + 8 * 20)) conv=notrunc 2>/dev/null
"$TOOL" check "$heap" >/dev/null && fail "check missed a damaged descriptor"
out=$("$TOOL" check --repair "$heap") || fail "check --repair exited $?: $out"
[[ $out == *"consistent now"* ]] || fail "repair said: $out"
[ -s "$heap.bak" ] || fail "no backup written"
cmp -s "$heap" "$heap.bak" && fail "the backup is the repaired file"
"$TOOL" check "$heap" >/dev/null || fail "check after repair"
LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c "print('reopened')" | grep -q reopened ||
  fail "the repaired heap does not open under the shim"
echo "ok"
