#!/usr/bin/env bash
# images_fixed.sh SHIM TOOL PROGRAM — PERSIST_IMAGES=fixed, the default: 20 runs of the PIE program
# on one heap with ASLR on in the system, every 4th (the first among them) killed with SIGKILL. Every run must see the
# first run's objects work (virtual calls, function pointers, a string literal); from the third run
# on the program must be loaded at one address and no open may rewrite a word (the pass ran once);
# the program's own children must get ASLR back; the heap must pass `persist check` after each run.
set -u
SHIM=$1 TOOL=$2 PROG=$3
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
heap=$dir/images.heap
aslr=$(cat /proc/sys/kernel/randomize_va_space)
expect="square 49, circle 75, fn(14)=42, \"a string literal in .rodata\""
declare -A mains=()
for run in $(seq 1 20); do
  arg=; ((run % 4 == 1)) && arg=kill  # the first run too: killed before any clean close
  out=$(LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_VERBOSE=1 "$PROG" $arg 2>"$dir/err")
  rc=$?
  if [ -n "$arg" ]; then want_rc=137; else want_rc=0; fi
  [ $rc = $want_rc ] || { echo "FAIL: run $run exited $rc (want $want_rc): $out"; cat "$dir/err"; exit 1; }
  echo "$out"
  [[ $out == "run $run "*"$expect" ]] || { echo "FAIL: run $run printed: $out"; cat "$dir/err"; exit 1; }
  if ((run >= 3)); then
    mains[$(sed -n 's/.*main=\(0x[0-9a-f]*\).*/\1/p' <<<"$out")]=1
    if grep -q "words rewritten" "$dir/err"; then
      echo "FAIL: run $run rewrote words (the image pass ran again):"; cat "$dir/err"; exit 1
    fi
    if [ "$aslr" != 0 ]; then
      [[ $out == *" child_aslr=1:"* ]] || { echo "FAIL: run $run's child ran without ASLR: $out"; exit 1; }
    fi
  fi
  "$TOOL" check "$heap" >/dev/null || { echo "FAIL: persist check after run $run"; "$TOOL" check "$heap"; exit 1; }
done
[ ${#mains[@]} = 1 ] || { echo "FAIL: from run 3 on, the program was loaded at ${#mains[@]} addresses"; exit 1; }
fixed=${!mains[*]}
# `persist run` starts the program with its images fixed already: no re-execution, no pass.
out=$("$TOOL" run --file "$heap" -- "$PROG" 2>"$dir/err") || { echo "FAIL: persist run: $out"; cat "$dir/err"; exit 1; }
[[ $out == *"main=$fixed child_aslr=1: $expect" ]] || { echo "FAIL: persist run printed: $out (fixed: $fixed)"; exit 1; }
out=$(PERSIST_VERBOSE=1 "$TOOL" run --file "$heap" -- "$PROG" 2>"$dir/err") || { echo "FAIL: persist run: $out"; exit 1; }
if grep -q "running the program again\|words rewritten" "$dir/err"; then
  echo "FAIL: under persist run the shim re-executed or rewrote:"; cat "$dir/err"; exit 1
fi
# Opting out: PERSIST_IMAGES=rewrite keeps ASLR (and pays the pass).
out=$(LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_IMAGES=rewrite "$PROG" 2>"$dir/err") || { echo "FAIL: rewrite run: $out"; cat "$dir/err"; exit 1; }
[[ $out == *"$expect" ]] || { echo "FAIL: rewrite run printed: $out"; exit 1; }
if [ "$aslr" != 0 ]; then
  [[ $out != *"main=$fixed "* ]] || { echo "FAIL: PERSIST_IMAGES=rewrite ran without ASLR: $out"; exit 1; }
fi
[ ! -s "$dir/err" ] || { echo "FAIL: stderr not empty without PERSIST_VERBOSE:"; cat "$dir/err"; exit 1; }
echo "ok: 20 runs, one load address from run 3 on, no pass after run 2"
