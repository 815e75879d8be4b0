-- pgbench script for scripts/bench_redeem.py: the redeem UPDATE of
-- scripts/bench/thin_redeem.py, straight to PostgreSQL, on a random row of the
-- scratch table bench_pgb_coupons (ids 1..:rows, created by the benchmark with a
-- uses_left so large that every UPDATE matches). Run as
--   pgbench -n -f scripts/bench/pg_update.sql -D rows=100000 -c 16 -j 2 -T 10 DB
\set id random(1, :rows)
UPDATE bench_pgb_coupons
   SET uses_left = uses_left - 1,
       status = CASE WHEN uses_left - 1 = 0 THEN 'redeemed' ELSE status END
 WHERE id = :id AND status = 'active' AND uses_left >= 1;
