"""The webhook dispatcher: claims due deliveries, POSTs them signed, records the outcome.

It runs beside the Temporal worker as an asyncio task and shares nothing with the
transitions: a slow or broken receiver delays its own deliveries, never a booking.

Guarantees:

- At most one dispatcher sends a given attempt. A delivery is claimed with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and moved to ``delivering`` (with a lease,
  ``locked_until``) in one short transaction; the HTTP call happens after that commit,
  so no database lock or connection is held while waiting on a receiver.
- Per consultation request, a subscription receives events in order: a delivery is
  not attempted while an earlier one of the same request to the same subscription
  is pending or in flight. A parked one no longer holds the rest back.
- At least once: if a dispatcher dies mid-attempt its lease lapses and another one
  retries. Every attempt of one event carries the same ``webhook-id`` (the event id),
  which receivers use to drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import httpx
from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from core.settings import Settings
from core.vocabulary import DeliveryStatus
from db.event_feed import EventEnvelope
from db.models import DomainEvent, WebhookDelivery, WebhookSubscription
from integrations.outbound.targets import TargetRefused, webhook_target_policy
from integrations.outbound.transport import GuardedTransport, OutboundTargetRefused
from integrations.webhooks.backoff import retry_delay
from integrations.webhooks.fanout import FANOUT_BATCH, fan_out
from integrations.webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

# Added to the attempt timeout for the lease, so recording the outcome of an attempt
# that used its whole timeout still happens before anyone else may claim it.
LEASE_MARGIN = timedelta(seconds=30)
MAX_ERROR_LENGTH = 500
USER_AGENT = "booking-service-webhooks/1"

_UNFINISHED = (DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERING.value)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One claimed attempt, with everything needed to send it outside a transaction."""

    delivery_id: uuid.UUID
    number: int
    url: str
    signing_secrets: tuple[str, ...]
    message_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Round:
    """What one ``run_once`` did."""

    events_fanned_out: int
    attempts: int

    @property
    def idle(self) -> bool:
        return self.events_fanned_out == 0 and self.attempts == 0


def _due_deliveries(limit: int, max_attempts: int) -> Select[uuid.UUID]:
    earlier = aliased(WebhookDelivery)
    now = func.now()
    return (
        select(WebhookDelivery.id)
        .join(
            WebhookSubscription,
            and_(
                WebhookSubscription.id == WebhookDelivery.subscription_id,
                WebhookSubscription.is_enabled,
            ),
        )
        .where(
            or_(
                and_(
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                    WebhookDelivery.next_attempt_at <= now,
                ),
                # A claim whose dispatcher died (its lease lapsed) is taken over.
                and_(
                    WebhookDelivery.status == DeliveryStatus.DELIVERING.value,
                    WebhookDelivery.locked_until <= now,
                    WebhookDelivery.attempts < max_attempts,
                ),
            ),
            ~exists().where(
                earlier.subscription_id == WebhookDelivery.subscription_id,
                earlier.consultation_request_id == WebhookDelivery.consultation_request_id,
                earlier.event_sequence < WebhookDelivery.event_sequence,
                earlier.status.in_(_UNFINISHED),
            ),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )


class WebhookDispatcher:
    """Delivers pending webhooks; ``run_once`` is one round, ``run`` loops until stopped."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._settings = settings
        self._timeout = settings.webhook_timeout.total_seconds()
        self._owns_http = http is None
        self._policy = webhook_target_policy(settings)
        # Redirects are not followed: the subscription names the endpoint, and a
        # redirect could point the signed body anywhere. The transport connects to
        # public addresses only (see integrations/outbound/targets.py).
        self._http = http or httpx.AsyncClient(
            transport=GuardedTransport(self._policy),
            timeout=self._timeout,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            trust_env=False,
        )
        self._rng = rng or random.SystemRandom()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def run_once(self) -> Round:
        """Fan out, claim one batch, send it and wait for every outcome."""
        fanned_out = await fan_out(self._session_factory)
        attempts = await self._claim(self._settings.webhook_batch_size)
        await asyncio.gather(*(self._deliver(attempt) for attempt in attempts))
        return Round(events_fanned_out=fanned_out, attempts=len(attempts))

    async def run(self, stop: asyncio.Event) -> None:
        """Keep up to ``webhook_batch_size`` attempts in flight until ``stop`` is set.

        Unlike ``run_once`` it does not wait for a whole batch: a receiver that takes
        its full timeout delays its own deliveries, not everyone else's. On stop, the
        attempts in flight finish and record their outcome.
        """
        poll = self._settings.webhook_poll_interval.total_seconds()
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                busy = False
                room = self._settings.webhook_batch_size - len(in_flight)
                if room > 0:
                    try:
                        fanned_out = await fan_out(self._session_factory)
                        attempts = await self._claim(room)
                    except Exception:
                        # The database may be restarting; all state is in tables, go on.
                        logger.exception("webhook dispatcher round failed")
                        fanned_out, attempts = 0, []
                    for attempt in attempts:
                        task = asyncio.create_task(self._deliver(attempt))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                    # Straight on only while work is waiting: deliveries were due, or
                    # the fan-out read a full batch. Events fanned out to no one (no
                    # subscription wants them) are no reason to spin: under a steady
                    # stream of bookings that loop ran two transactions back to back
                    # all the time.
                    busy = bool(attempts) or fanned_out >= FANOUT_BATCH
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=poll)
        finally:
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _claim(self, limit: int) -> list[Attempt]:
        settings = self._settings
        lease = settings.webhook_timeout + LEASE_MARGIN
        async with self._session_factory() as session, session.begin():
            await self._park_abandoned(session)
            claimed = (
                await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id.in_(
                            _due_deliveries(limit, settings.webhook_max_attempts)
                        )
                    )
                    .values(
                        status=DeliveryStatus.DELIVERING.value,
                        attempts=WebhookDelivery.attempts + 1,
                        last_attempt_at=func.now(),
                        locked_until=func.now() + lease,
                    )
                    .returning(
                        WebhookDelivery.id,
                        WebhookDelivery.attempts,
                        WebhookDelivery.subscription_id,
                        WebhookDelivery.event_id,
                    )
                )
            ).all()
            if not claimed:
                return []
            subscriptions = {
                s.id: s
                for s in await session.scalars(
                    select(WebhookSubscription).where(
                        WebhookSubscription.id.in_({row.subscription_id for row in claimed})
                    )
                )
            }
            events = {
                e.id: e
                for e in await session.scalars(
                    select(DomainEvent).where(DomainEvent.id.in_({row.event_id for row in claimed}))
                )
            }
            now = await session.scalar(select(func.now()))
            assert now is not None
            return [
                Attempt(
                    delivery_id=row.id,
                    number=row.attempts,
                    url=subscriptions[row.subscription_id].url,
                    signing_secrets=_signing_secrets(subscriptions[row.subscription_id], now),
                    message_id=str(row.event_id),
                    body=EventEnvelope.of(events[row.event_id]).model_dump_json(),
                )
                for row in claimed
            ]

    async def _park_abandoned(self, session: AsyncSession) -> None:
        """A lapsed claim that already used the last attempt: nobody knows how it ended."""
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.status == DeliveryStatus.DELIVERING.value,
                WebhookDelivery.locked_until <= func.now(),
                WebhookDelivery.attempts >= self._settings.webhook_max_attempts,
            )
            .values(
                status=DeliveryStatus.PARKED.value,
                locked_until=None,
                last_error="The last attempt's outcome was never recorded (dispatcher stopped).",
            )
        )

    async def _deliver(self, attempt: Attempt) -> None:
        try:
            outcome = await self._send(attempt)
        except Exception as exc:
            # Unexpected (a bug, a library surprise): still an attempt that failed.
            logger.exception(
                "webhook delivery %s attempt crashed (%s)", attempt.delivery_id, type(exc).__name__
            )
            outcome = Outcome(False, None, "The attempt failed inside the service; see its log.")
        try:
            await self._record(attempt, outcome)
        except Exception:
            # The lease lapses and the delivery is tried again: at least once.
            logger.exception("could not record webhook delivery %s", attempt.delivery_id)

    async def _send(self, attempt: Attempt) -> Outcome:
        try:
            # Again at send time: a subscription stored under an older policy.
            self._policy.check_url(attempt.url)
        except TargetRefused as exc:
            return Outcome(False, None, _refused(exc))
        headers = signed_headers(
            attempt.signing_secrets, attempt.message_id, datetime.now(UTC), attempt.body
        )
        try:
            # httpx's timeout is per phase; this bounds the whole attempt, which the
            # lease relies on.
            async with (
                asyncio.timeout(self._timeout),
                self._http.stream(
                    "POST", attempt.url, content=attempt.body.encode(), headers=headers
                ) as response,
            ):
                # The body is not read: a receiver only answers with its status.
                status_code = response.status_code
        except TimeoutError:
            return Outcome(False, None, f"No response within {self._timeout:g} s.")
        except OutboundTargetRefused as exc:
            return Outcome(False, None, _refused(exc))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # The library's text may name resolved addresses or the worker's network;
            # operators see what kind of failure it was, the log has the rest.
            logger.info(
                "webhook delivery %s attempt %d: %s: %s",
                attempt.delivery_id,
                attempt.number,
                type(exc).__name__,
                exc,
            )
            return Outcome(False, None, _failure_text(exc, self._timeout))
        if 200 <= status_code < 300:
            return Outcome(True, status_code, None)
        return Outcome(False, status_code, f"The receiver answered HTTP {status_code}.")

    async def _record(self, attempt: Attempt, outcome: Outcome) -> None:
        settings = self._settings
        values: dict[str, object] = {
            "locked_until": None,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.succeeded:
            values["status"] = DeliveryStatus.SUCCEEDED.value
        elif attempt.number >= settings.webhook_max_attempts:
            values["status"] = DeliveryStatus.PARKED.value
        else:
            values["status"] = DeliveryStatus.PENDING.value
            values["next_attempt_at"] = func.now() + retry_delay(
                attempt.number,
                base=settings.webhook_backoff_base,
                cap=settings.webhook_backoff_max,
                rng=self._rng,
            )
        async with self._session_factory() as session, session.begin():
            # Only if the claim is still ours: a lapsed lease may have been taken over.
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == attempt.delivery_id,
                    WebhookDelivery.status == DeliveryStatus.DELIVERING.value,
                    WebhookDelivery.attempts == attempt.number,
                )
                .values(**values)
            )
        if not outcome.succeeded:
            logger.info(
                "webhook delivery %s attempt %d failed: %s",
                attempt.delivery_id,
                attempt.number,
                outcome.error,
            )


def _signing_secrets(subscription: WebhookSubscription, now: datetime) -> tuple[str, ...]:
    previous, expires = subscription.previous_secret, subscription.previous_secret_expires_at
    if previous is not None and expires is not None and expires > now:
        return (subscription.secret, previous)
    return (subscription.secret,)


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _refused(exc: Exception) -> str:
    return _short(f"Refused: {exc} (BOOKING_WEBHOOK_ALLOWED_TARGETS allows others).")


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _failure_text(exc: Exception, timeout: float) -> str:
    """What an operator is told about a failed attempt: its kind, never the library's
    own message (addresses, internal host names, socket errors)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"No response within {timeout:g} s."
    if isinstance(exc, httpx.ConnectError):
        if any(isinstance(cause, ssl.SSLError) for cause in _causes(exc)):
            return "The TLS handshake with the receiver failed (certificate or protocol)."
        return "Could not connect to the receiver."
    if isinstance(exc, httpx.RemoteProtocolError):
        return "The receiver's answer was not valid HTTP."
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "The subscription's URL cannot be used."
    return "The request to the receiver failed."


async def run_dispatcher(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event
) -> None:
    """Deliver webhooks until ``stop`` is set; the worker process runs this as a task."""
    async with WebhookDispatcher(session_factory, settings) as dispatcher:
        await dispatcher.run(stop)
