-- pgbench script of scripts/bench_redeem.py: thin_redeem.py's UPDATE on a random row of the
-- scratch table bench_pgb_coupons (ids 1..:rows, uses_left so large every UPDATE matches).
\set id random(1, :rows)
UPDATE bench_pgb_coupons
   SET uses_left = uses_left - 1, status = CASE WHEN uses_left - 1 = 0 THEN 'redeemed' ELSE status END
 WHERE id = :id AND status = 'active' AND uses_left >= 1;
