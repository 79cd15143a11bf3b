-- sqlite_insert.sql — sqlite3 inserting rows into an in-memory database with an index, then a
-- grouped query (BENCH.md: barely reacts to the allocator; a control). Run as
-- `sqlite3 :memory: < sqlite_insert.sql`.
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, pad TEXT);
CREATE INDEX t_k ON t(k);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500000)
INSERT INTO t(k, v, pad) SELECT printf('k%08d', (i * 7919) % 1000003), i % 1000, hex(randomblob(16)) FROM c;
SELECT count(*), sum(v) FROM t;
SELECT v % 10, count(*), max(k) FROM t GROUP BY v % 10 ORDER BY 1 LIMIT 3;
