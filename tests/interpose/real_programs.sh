#!/bin/bash
# real_programs.sh SHIM TOOL BINDIR SRCDIR CASE — real Debian programs under the shim (issue 3,
# "Tests", first point). Each CASE runs a scenario three times: without the shim, then with
# LD_PRELOAD=libpersist.so PERSIST_FILE=<temp dir>/<case>.heap on a new heap file, then again on
# the heap file the first run left; compares each shim run's exit status and stdout exactly with
# the reference (stderr too: children that find the heap held by their ancestor are silent), and runs
# `persist check` on the heap file after each (see run_both in common.sh).
#
# CASE: python3 python3_malloc python3_fork perl sqlite3 lua php git gxx bash_pipeline threads redis,
# and python3_sites python3_fork_sites threads_sites: the same with PERSIST_SITES=4096
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE=$SRC/tests/interpose
SCEN=$HERE/scenarios

need() { command -v "$1" >/dev/null 2>&1 || { fail "$1 is not installed (scripts/setup.sh installs it)"; finish; }; }

# ---- scenarios: each prefixes the programs it runs under test with "${RUN[@]}" ----------------
scn_python3() { "${RUN[@]}" /usr/bin/python3 "$SCEN/dicts.py"; }
scn_python3_fork() { "${RUN[@]}" /usr/bin/python3 "$SCEN/forks.py"; }
scn_python3_malloc() { "${RUN[@]}" PYTHONMALLOC=malloc /usr/bin/python3 "$SCEN/dicts.py"; }
scn_perl() { "${RUN[@]}" /usr/bin/perl "$SCEN/hashes.pl"; }

scn_sqlite3() {
  # 200,000 INSERT statements in one transaction, an index built afterwards, then queries.
  awk 'BEGIN {
    print "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL);"
    print "BEGIN;"
    s = 1
    for (i = 1; i <= 200000; i++) {
      s = (s * 1103515245 + 12345) % 2147483648
      printf "INSERT INTO t (name, grp, val) VALUES (%cname-%d-%d%c, %d, %d.25);\n", 39, i, s % 977, 39, s % 1000, s % 100000
    }
    print "COMMIT;"
    print "CREATE INDEX t_grp ON t (grp, val);"
    print "CREATE INDEX t_name ON t (name);"
  }' >insert.sql
  cat >query.sql <<'EOF'
SELECT count(*), sum(grp), round(avg(val), 4) FROM t;
SELECT grp, count(*), round(max(val), 2) FROM t WHERE grp BETWEEN 10 AND 14 GROUP BY grp ORDER BY grp;
SELECT name FROM t WHERE name LIKE 'name-19999%' ORDER BY name;
SELECT grp, count(*) AS c FROM t GROUP BY grp ORDER BY c DESC, grp LIMIT 5;
EXPLAIN QUERY PLAN SELECT * FROM t WHERE grp = 5 AND val > 100;
PRAGMA integrity_check;
EOF
  "${RUN[@]}" /usr/bin/sqlite3 -batch test.db <insert.sql || return
  "${RUN[@]}" /usr/bin/sqlite3 -batch test.db <query.sql
}

scn_lua() { "${RUN[@]}" /usr/bin/lua5.4 "$SCEN/tables.lua"; }
# PHP dlopens its extensions with RTLD_DEEPBIND (the shim drops the flag: interpose/dlopen.cpp).
scn_php() {
  "${RUN[@]}" /usr/bin/php -r 'echo 1, "\n";' || return
  "${RUN[@]}" /usr/bin/php -m | grep -c . || return
  "${RUN[@]}" /usr/bin/php "$SCEN/extensions.php"
}

scn_git() {
  # Every git command is a separate process under the shim, one after the other on one heap file.
  # git's own children (gc runs pack-objects, repack, ...) inherit the environment and find the
  # heap file held by their parent: they run on a volatile heap, silently.
  export HOME=$TMP/work GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=t@example.com
  export GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=t@example.com
  export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
  local g=("${RUN[@]}" /usr/bin/git -c init.defaultBranch=main -c gc.autoDetach=false)
  "${g[@]}" init -q repo || return
  cd repo || return
  local i
  for i in 1 2 3 4 5 6; do
    seq 1 $((i * 2000)) | sed "s/^/line $i /" >"file$i.txt"
    printf 'edit %d\n' "$i" >>README
    "${g[@]}" add -A || return
    "${g[@]}" commit -q -m "commit $i" || return
  done
  "${g[@]}" branch side HEAD~2
  "${g[@]}" tag v1 HEAD~1
  "${g[@]}" gc -q --aggressive || return
  "${g[@]}" fsck --no-progress --strict
  "${g[@]}" log --stat --format='%H %an %s'
  "${g[@]}" log --graph --oneline --all --decorate
  "${g[@]}" count-objects -v | grep -v size
  "${g[@]}" diff --stat HEAD~3 HEAD
}

scn_gxx() {
  "${RUN[@]}" /usr/bin/g++ -std=c++17 -O2 -o prog "$SCEN/prog.cpp" || return
  ./prog
}

scn_bash_pipeline() {
  # bash under the shim: subshells, pipelines, command substitution, external commands (all of
  # them children with the same environment).
  "${RUN[@]}" /bin/bash -c '
    set -o pipefail
    declare -A count
    for w in $(seq 1 3000 | awk "{ print \$1 % 97 }"); do count[$w]=$(( ${count[$w]:-0} + 1 )); done
    echo "distinct ${#count[@]}"
    ( cd /usr/share/doc && ls | sort | head -n 3 | wc -l )
    seq 1 20000 | sort -r | uniq | awk "{ s += \$1 } END { print \"sum\", s }"
    x=$( { echo a; echo b; (echo c; echo d) | tr a-z A-Z; } | paste -sd, )
    echo "joined $x"
    printf "%s\n" one two three | while read -r l; do echo "${#l}:$l"; done | sort -n
    for i in 1 2 3; do (echo "sub $i" | sed "s/sub/subshell/") & done; wait
    echo "$(( $(echo 6) * $(echo 7) ))"
    str=""; for i in $(seq 1 2000); do str+="$i,"; done; echo "len ${#str}"
  ' | sort
}

scn_threads() { "${RUN[@]}" "$BIN/interpose_mt_churn" 8 3000; }

# redis-server alone under the shim, on 127.0.0.1 and a free port; redis-benchmark and redis-cli
# (not under the shim) drive it; stdout gets only deterministic replies.
redis_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
scn_redis() {
  local port
  port=$(redis_port)
  "${RUN[@]}" /usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --protected-mode yes --dir "$TMP/work" --loglevel warning >redis.log 2>redis.err &
  local pid=$! i
  local cli=(/usr/bin/redis-cli -h 127.0.0.1 -p "$port")
  for i in $(seq 1 100); do
    [ "$("${cli[@]}" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  "${cli[@]}" ping || { echo "redis-server did not answer"; kill "$pid"; cat redis.log redis.err >&2; return 1; }
  "${cli[@]}" set greeting "hello persistent world"
  "${cli[@]}" get greeting
  "${cli[@]}" rpush list a b c d
  "${cli[@]}" lrange list 0 -1
  "${cli[@]}" hset h f1 v1 f2 v2
  "${cli[@]}" hgetall h
  timeout 120 /usr/bin/redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -q -r 10000 -d 200 \
    -t set,get,incr,lpush,rpop,sadd,hset,lrange_100 >bench.txt 2>&1
  local brc=$?
  echo "benchmark exit status $brc, $(grep -c 'requests per second' bench.txt) tests"
  for i in $(seq 1 200); do "${cli[@]}" set "key:$i" "$(printf 'v%0200d' "$i")" >/dev/null; done
  "${cli[@]}" info memory | tr -d '\r' |
    grep -E '^(used_memory|allocator_allocated|allocator_active|allocator_resident|mem_allocator):' >"$TMP/memory.$MODE.txt"
  "${cli[@]}" get key:77 | cut -c1-20
  "${cli[@]}" exists key:200
  "${cli[@]}" get greeting
  "${cli[@]}" shutdown nosave
  local st=0
  wait "$pid" || st=$?
  echo "redis-server exit status $st"
  tr '\r' '\n' <bench.txt | grep 'requests per second' >"$TMP/bench.$MODE.txt"
  cat redis.err >&2
  [ $brc -eq 0 ] && [ $st -eq 0 ]
}

case $CASE in
  python3 | python3_malloc) need /usr/bin/python3; run_both "$CASE" no "scn_$CASE" ;;
  # The same with allocation sites recorded (one sample per 4 KiB: thousands of backtraces).
  python3_sites) need /usr/bin/python3; SHIM_ENV=PERSIST_SITES=4096 run_both python3_sites no scn_python3 ;;
  python3_fork_sites)
    need /usr/bin/python3; SHIM_ENV=PERSIST_SITES=4096 run_both python3_fork_sites yes scn_python3_fork ;;
  threads_sites) SHIM_ENV=PERSIST_SITES=4096 run_both threads_sites no scn_threads ;;
  python3_fork) need /usr/bin/python3; run_both python3_fork yes scn_python3_fork ;;
  perl) need /usr/bin/perl; run_both perl no scn_perl ;;
  sqlite3) need /usr/bin/sqlite3; run_both sqlite3 no scn_sqlite3 ;;
  lua) need /usr/bin/lua5.4; run_both lua no scn_lua ;;
  php) need /usr/bin/php; run_both php no scn_php ;;
  git) need /usr/bin/git; run_both git yes scn_git ;;
  gxx) need /usr/bin/g++; run_both gxx yes scn_gxx ;;
  bash_pipeline) run_both bash_pipeline yes scn_bash_pipeline ;;
  threads) run_both threads no scn_threads ;;
  redis)
    need /usr/bin/redis-server
    need /usr/bin/redis-benchmark
    run_both redis no scn_redis 150
    for m in ref shim; do
      note "redis ($m): INFO memory after the benchmark: $(paste -sd' ' "$TMP/memory.$m.txt")"
      note "redis-benchmark ($m):"
      show "$TMP/bench.$m.txt" 12
    done
    ;;
  *) echo "unknown case $CASE"; exit 64 ;;
esac
finish
