"""Resume review matching at scale: the optimal matcher against first-come-first-served, same data, same run.

    .venv/bin/python bench/matching.py [--requests 1000] [--professionals 300] [--seed 7]

Makes (or remakes) database ``xpbase_bench_matching`` on the configured server
(the embedded one when DATABASE_URL is unset), migrates it, and writes
``--professionals`` professionals in 12 time zones with weekly availability
(two to five evening or morning windows of 1-3 h in their own zone, so two
weeks of it inside the 14-day horizon), capacity 1-4, ratings and
specialties; and ``--requests`` open requests from members in 8 zones with
two or three preferred windows, one to two wanted specialties and an
industry, waiting 0-20 days. Setup writes rows as the table owner; everything
measured goes through the RPCs as service_role.

Prints the time of each phase of one real run (read: admin_review_match_input;
score; solve: linear_sum_assignment; book: admin_book_review per pair), and,
on the data that run read, the optimal assignment against a greedy matcher
(oldest request first takes the professional with the earliest common slot):
matched count, total score and median wait (hours from now to the session).
Exits 1 unless the optimal matcher matches at least as many and scores higher.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from functools import partial

from xpbase.db import Database, recreate_database, resolve_url, url_with_database
from xpbase.matching import Weights, greedy, run_matching, score_all, solve
from xpbase.migrate import migrate
from xpbase.models.reviews import MatchInput
from xpbase.settings import get_settings

PRO_ZONES = [
    "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Berlin",
    "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo",
    "Africa/Lagos", "Asia/Dubai",
]  # fmt: skip
MEMBER_ZONES = [
    "America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "Asia/Singapore",
    "Europe/Berlin", "America/Chicago", "Australia/Sydney",
]  # fmt: skip
SPECIALTIES = ["resume", "software", "data", "product", "design", "finance", "consulting", "marketing"]
INDUSTRIES = ["tech", "finance", "health", "retail", "energy", "media"]


def windows(rng: random.Random, count: int) -> list[tuple[int, int, int]]:
    out = []
    for _ in range(count):
        day = rng.randint(1, 7)
        start = rng.choice([7, 8, 12, 17, 18, 19, 20]) * 60 + rng.choice([0, 30])
        out.append((day, start, min(1440, start + rng.choice([60, 90, 120, 180]))))
    return out


async def setup(db: Database, rng: random.Random, n_requests: int, n_pros: int) -> None:
    async with db.pool.acquire() as conn, conn.transaction():
        pros = [
            (
                f"Pro {i}",
                f"pro{i}@bench.example",
                rng.choice(PRO_ZONES),
                sorted(set(rng.sample(SPECIALTIES, rng.randint(1, 3)))),
                rng.sample(INDUSTRIES, rng.randint(1, 2)),
                rng.randint(1, 4),
                round(rng.uniform(3.0, 5.0), 2),
            )
            for i in range(n_pros)
        ]
        for name, email, zone, specs, inds, cap, rating in pros:
            pid = await conn.fetchval(
                "insert into public.professionals (name, email, time_zone, specialties, industries,"
                " weekly_capacity,"
                " rating) values ($1, $2, $3, $4, $5, $6, $7) returning id",
                name,
                email,
                zone,
                specs,
                inds,
                cap,
                rating,
            )
            await conn.executemany(
                "insert into private.availability_rules (professional_id, weekday, start_minute, end_minute)"
                " values ($1, $2, $3, $4)",
                [(pid, d, s, e) for d, s, e in windows(rng, rng.randint(2, 5))],
            )
        members = await conn.fetch(
            "select public.ensure_profile('discord', 'bench-' || i, 'Member ' || i) as id"
            " from generate_series(1, $1) i",
            n_requests,
        )
        for row in members:
            prefs = [
                {"weekday": d, "start_minute": s, "end_minute": e}
                for d, s, e in windows(rng, rng.randint(2, 3))
            ]
            await conn.execute(
                "insert into public.review_requests (member_id, target_role, industry, specialties,"
                " time_zone,"
                " preferred_times, created_at) values ($1, 'Analyst', $2, $3, $4, $5::jsonb,"
                " now() - make_interval(hours => $6))",
                row["id"],
                rng.choice(INDUSTRIES),
                sorted(set(rng.sample(SPECIALTIES, rng.randint(1, 2)))),
                rng.choice(MEMBER_ZONES),
                prefs,
                rng.randint(0, 480),
            )


def summary(pairs: list, data: MatchInput) -> tuple[int, float, float]:
    waits = [(p.starts[0] - data.at) / 3600 for p in pairs]
    return len(pairs), sum(p.score for p in pairs), statistics.median(waits) if waits else float("nan")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--professionals", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = get_settings()
    base, _ = resolve_url(settings)
    await recreate_database(base, "xpbase_bench_matching", drop=True)
    url = url_with_database(base, "xpbase_bench_matching")
    await migrate(url, settings.supabase_dir)
    db = await Database.connect(url, min_size=1, max_size=4)
    try:
        t = time.perf_counter()
        await setup(db, random.Random(args.seed), args.requests, args.professionals)
        print(
            f"setup: {args.requests} requests, {args.professionals} professionals in"
            f" {time.perf_counter() - t:.1f} s"
        )
        call = partial(db.rpc, role="service_role")
        data = MatchInput.model_validate(
            await call("admin_review_match_input", horizon_days=14, session_minutes=45)
        )
        weights = Weights()
        pairs = score_all(data, weights)
        columns = [p.id for p in data.professionals for _ in range(max(0, p.remaining))]
        optimal = solve([r.id for r in data.requests], columns, pairs, weights.max_score)
        base_line = greedy(data, weights)
        report = await run_matching(call, horizon_days=14, session_minutes=45)
    finally:
        await db.close()
    print(f"capacity: {len(columns)} seats for {len(data.requests)} requests; feasible pairs: {len(pairs)}")
    print("phases of the booked run (s): " + ", ".join(f"{k} {v:.3f}" for k, v in report.phases.items()))
    print(
        f"booked: {len(report.matches)} sessions in {report.rounds} round(s), {report.conflicts} conflict(s)"
    )
    rows = {"optimal": summary(optimal, data), "greedy (FCFS)": summary(base_line, data)}
    print(f"{'matcher':<16}{'matched':>9}{'total score':>14}{'median wait h':>15}")
    for name, (n, score, wait) in rows.items():
        print(f"{name:<16}{n:>9}{score:>14.2f}{wait:>15.1f}")
    (n_opt, s_opt, _), (n_gr, s_gr, _) = rows["optimal"], rows["greedy (FCFS)"]
    print(f"ratio optimal/greedy: matched {n_opt / max(1, n_gr):.3f}, score {s_opt / max(1e-9, s_gr):.3f}")
    ok = n_opt >= n_gr and s_opt > s_gr
    print("optimal matches at least as many and scores higher: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
