"""The job queue's worker: procrastinate tasks for deliveries and the periodic database jobs.

``xpbase worker`` runs one (``--concurrency`` jobs at once); ``xpbase serve``
runs one in-process beside the service unless ``XPBASE_WORKER_IN_PROCESS`` is
false. Several workers, on one machine or many, share the queue safely.

Queues and tasks:

- ``deliveries``: ``xpbase.deliver(delivery_id)``, enqueued by the outbox
  trigger in SQL (supabase/sql/77_outbox.sql): claim the delivery, send it on
  its channel (xpbase/delivery.py), record the outcome (backoff, Retry-After,
  dead after ``XPBASE_DELIVERY_MAX_ATTEMPTS``, quiet hours) in SQL.
- ``periodic``: cron-scheduled tasks (``XPBASE_SCHEDULE_*``; an empty schedule
  turns one off, e.g. when pg_cron runs the SQL instead): season finalisation,
  leaderboard compaction, auth clean-up, retention of chat, notifications,
  deliveries and finished jobs, streak reminders, the outbox sweep, and
  resume review matching.
- ``badges``: ``xpbase.evaluate_badge(evaluation_id)``, enqueued by a trigger
  on ``public.badges`` (supabase/sql/33_badges.sql) when a badge is added or
  its rule changes: walks the ledger :data:`BADGE_EVALUATION_STEP` members
  at a time through ``service_role_evaluate_badge``, which records progress
  in ``public.badge_evaluations``.

Idempotency: procrastinate defers each periodic tick once however many
workers run (a unique row per task and timestamp); every periodic task holds a
procrastinate ``lock`` of its own name, so two of them never run at once, and a
``queueing_lock``, so ticks do not pile up while one runs; and the SQL each one
calls is idempotent by itself (claims with ``skip locked``, advisory locks,
unique keys, ``on conflict do nothing``).

The workers' procrastinate connections use ``search_path=procrastinate`` (the
queue lives in that schema, see xpbase/queue_schema.py); the tasks call xpbase
functions as ``service_role`` through an asyncpg pool, like the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import procrastinate
from procrastinate import jobs as procrastinate_jobs

from xpbase.db import Database
from xpbase.delivery import Outcome, Senders
from xpbase.models.badges import BadgeEvaluation
from xpbase.models.outbox import Claim, Finished, Purged
from xpbase.queue_schema import SCHEMA
from xpbase.settings import Settings

log = logging.getLogger(__name__)

DELIVERIES = "deliveries"
PERIODIC = "periodic"
BADGES = "badges"
QUEUES = (DELIVERIES, PERIODIC, BADGES)
#: Members per step of a retroactive badge evaluation (one transaction each; progress is saved per step).
BADGE_EVALUATION_STEP = 500


def connector(database_url: str, *, max_size: int = 10) -> procrastinate.PsycopgConnector:
    """procrastinate's psycopg connector on ``database_url``, its queries resolving in the queue's schema."""
    return procrastinate.PsycopgConnector(
        conninfo=database_url,
        kwargs={"options": f"-c search_path={SCHEMA}"},
        min_size=1,
        max_size=max_size,
    )


class Worker:
    """The procrastinate app with xpbase's tasks, and what they need at run time (database, senders).

    ``app`` can defer and inspect jobs once opened; ``run`` opens everything and
    works until cancelled (or SIGINT/SIGTERM when ``install_signal_handlers``).
    """

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.app = procrastinate.App(
            connector=connector(database_url, max_size=settings.worker_concurrency + 4)
        )
        self.database: Database | None = None
        self.senders: Senders | None = None
        self._register()

    # -- tasks ---------------------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app

        @app.task(name="xpbase.deliver", queue=DELIVERIES, pass_context=False)
        async def deliver(delivery_id: int) -> str:
            return await self.deliver(delivery_id)

        @app.task(name="xpbase.evaluate_badge", queue=BADGES, pass_context=False)
        async def evaluate_badge(evaluation_id: int) -> dict[str, Any]:
            return (await self.evaluate_badge(evaluation_id)).model_dump(mode="json")

        periodic = [
            ("finalize_seasons", self.settings.schedule_finalize_seasons),
            ("compact_leaderboards", self.settings.schedule_compact_leaderboards),
            ("purge_auth", self.settings.schedule_purge_auth),
            ("retention", self.settings.schedule_retention),
            ("streak_reminders", self.settings.schedule_streak_reminders),
            ("sweep_deliveries", self.settings.schedule_sweep_deliveries),
            ("match_reviews", self.settings.schedule_match_reviews),
            ("reconcile_payments", self.settings.schedule_reconcile_payments),
        ]
        for name, cron in periodic:
            self._periodic(name, cron)

    def _periodic(self, name: str, cron: str) -> None:
        """Task ``xpbase.<name>`` calling ``self.<name>()``, deferred on ``cron`` (when not empty)."""
        task_name = f"xpbase.{name}"

        async def tick(timestamp: int) -> Any:
            run: Callable[[], Awaitable[Any]] = getattr(self, name)
            return await run()

        tick.__name__ = name
        task = self.app.task(
            name=task_name, queue=PERIODIC, lock=task_name, queueing_lock=task_name, pass_context=False
        )(tick)
        if cron.strip():
            self.app.periodic(cron=cron, periodic_id=name)(task)

    @property
    def db(self) -> Database:
        if self.database is None:
            raise RuntimeError("the worker is not open")
        return self.database

    async def deliver(self, delivery_id: int) -> str:
        """Claim, send and finish one delivery; returns what happened (for the job's log line)."""
        assert self.senders is not None
        claim = Claim.model_validate(
            await self.db.rpc(
                "service_role_claim_delivery",
                delivery_id=delivery_id,
                lease_seconds=self.settings.delivery_lease_seconds,
            )
        )
        if claim.status != "claimed" or claim.delivery is None:
            return claim.status
        try:
            outcome = await self.senders.send(claim.delivery)
        except Exception as exc:  # a sender bug must not leave the delivery held until the lease ends
            log.exception("delivery %s: the %s sender failed", delivery_id, claim.delivery.channel)
            outcome = Outcome("retry", f"{type(exc).__name__}: {exc}")
        finished = await self.finish(delivery_id, outcome)
        if finished.state == "dead":
            log.warning(
                "delivery %s is dead after %s attempt(s): %s", delivery_id, finished.attempts, outcome.error
            )
        return finished.state

    async def evaluate_badge(self, evaluation_id: int, step: int = BADGE_EVALUATION_STEP) -> BadgeEvaluation:
        """Evaluate a badge over the ledger, ``step`` members per transaction, until it is done.

        Safe to run twice or beside the live trigger: badges already held are skipped. Raises DomainError
        XPBDG for an unknown evaluation.
        """
        while True:
            progress = BadgeEvaluation.model_validate(
                await self.db.rpc(
                    "service_role_evaluate_badge", evaluation_id=evaluation_id, max_profiles=step
                )
            )
            if progress.status == "done":
                log.info(
                    "badge %s (revision %s): %s member(s) looked at, %s badge(s) awarded",
                    progress.badge_slug,
                    progress.revision,
                    progress.profiles_done,
                    progress.awarded,
                )
                return progress

    async def finish(self, delivery_id: int, outcome: Outcome) -> Finished:
        """Record ``outcome`` with the settings' retry policy."""
        return Finished.model_validate(
            await self.db.rpc(
                "service_role_finish_delivery",
                delivery_id=delivery_id,
                outcome=outcome.outcome,
                error=outcome.error,
                retry_after_seconds=outcome.retry_after_seconds,
                max_attempts=self.settings.delivery_max_attempts,
                backoff_base_seconds=self.settings.delivery_backoff_base_seconds,
                backoff_max_seconds=self.settings.delivery_backoff_max_seconds,
            )
        )

    async def finalize_seasons(self) -> int:
        result = await self.db.rpc("finalize_seasons")
        if result["count"]:
            log.info("finalized %s season(s)", result["count"])
        return int(result["count"])

    async def compact_leaderboards(self) -> int:
        return int(await self.db.rpc("service_role_compact_leaderboard_counts"))

    async def purge_auth(self) -> dict[str, int]:
        return dict(await self.db.rpc("service_role_purge_auth"))

    async def retention(self) -> dict[str, int]:
        purged = Purged.model_validate(
            await self.db.rpc(
                "service_role_purge_old_messages",
                chat_days=self.settings.chat_retention_days,
                notification_days=self.settings.notification_retention_days,
                delivery_days=self.settings.delivery_retention_days,
            )
        )
        # procrastinate's own finished jobs (succeeded, failed, cancelled) older than the delivery retention.
        await self.app.job_manager.delete_old_jobs(
            nb_hours=self.settings.delivery_retention_days * 24, include_failed=True, include_cancelled=True
        )
        return purged.model_dump()

    async def streak_reminders(self) -> int:
        return int(await self.db.rpc("service_role_queue_streak_reminders"))

    async def sweep_deliveries(self) -> int:
        """Jobs of dead workers are failed (freeing their locks); abandoned deliveries are enqueued again."""
        stalled = await self.app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=max(30.0, self.settings.delivery_lease_seconds)
        )
        for job in stalled:
            assert job.id is not None
            log.warning("job %s (%s) was stalled: its worker died; marking it failed", job.id, job.task_name)
            await self.app.job_manager.finish_job_by_id_async(
                job.id, status=procrastinate_jobs.Status.FAILED, delete_job=False
            )
        return int(
            await self.db.rpc(
                "service_role_sweep_deliveries", lease_seconds=self.settings.delivery_lease_seconds
            )
        )

    async def match_reviews(self) -> dict[str, int]:
        """Match and book open resume review requests (xpbase/matching.py; conflicts are refused in SQL)."""
        from xpbase.matching import match_reviews

        report = await match_reviews(
            self.db,
            horizon_days=self.settings.review_horizon_days,
            session_minutes=self.settings.review_session_minutes,
        )
        if report.matches:
            log.info("booked %s review session(s)", len(report.matches))
        return {"matches": len(report.matches), "unmatched": len(report.unmatched)}

    async def reconcile_payments(self) -> dict[str, int]:
        """Ask Razorpay about orders still open (xpbase/razorpay_gateway.py); nothing when not configured.

        Idempotent: a payment is credited once whoever reports it (unique Razorpay payment id in SQL).
        """
        from xpbase.razorpay_gateway import reconcile_with_settings

        report = await reconcile_with_settings(self.db, self.settings)
        if report is None:
            return {"checked": 0}
        if report.credited or report.errors:
            log.info("reconciled payments: %s credited, %s errors", len(report.credited), len(report.errors))
        return {
            "checked": report.checked,
            "credited": len(report.credited),
            "expired": report.expired,
            "errors": len(report.errors),
        }

    # -- running -------------------------------------------------------------------------------------------

    async def open(self, database: Database | None = None) -> None:
        """Open the queue, the database pool (unless one is given) and the channel senders."""
        self.database = database or await Database.connect(
            self.database_url, min_size=1, max_size=self.settings.worker_concurrency + 2
        )
        self._owns_database = database is None
        self.senders = Senders(self.settings)
        await self.senders.open()
        await self.app.open_async()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.app.close_async()
        if self.senders is not None:
            await self.senders.close()
        if self.database is not None and getattr(self, "_owns_database", False):
            await self.database.close()
        self.database = None

    async def run(
        self,
        *,
        database: Database | None = None,
        concurrency: int | None = None,
        install_signal_handlers: bool = False,
        **options: Any,
    ) -> None:
        """Open, work the queues until cancelled (or a signal), close."""
        await self.open(database)
        try:
            await self.app.run_worker_async(
                queues=list(QUEUES),
                concurrency=concurrency or self.settings.worker_concurrency,
                install_signal_handlers=install_signal_handlers,
                delete_jobs="successful",
                **options,
            )
        finally:
            await self.close()


async def run_worker(settings: Settings, database_url: str, *, concurrency: int | None = None) -> None:
    """``xpbase worker``: one worker until SIGINT/SIGTERM."""
    worker = Worker(settings, database_url)
    log.info(
        "xpbase worker: queues %s, concurrency %s",
        ", ".join(QUEUES),
        concurrency or settings.worker_concurrency,
    )
    await worker.run(concurrency=concurrency, install_signal_handlers=True)


def start_in_process(settings: Settings, database_url: str) -> asyncio.Task[None]:
    """A worker as a task of the running loop (``xpbase serve``); cancel the task to stop it."""
    return asyncio.create_task(Worker(settings, database_url).run(), name="xpbase-worker")
