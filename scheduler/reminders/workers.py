"""A pool of sender threads: the loop that claims, sends and records, for the web process
(embedded) and for ``flask worker run`` alike.

One loop thread talks to the database; ``concurrency`` threads do the network calls.
It claims only what the pool can start soon (at most ``4 × concurrency`` in flight),
records finished results in small batches, and sleeps until woken (new deliveries),
a retry falls due, or the poll interval passes. ``stop()`` finishes the sends in
progress, records them, and gives the claimed-but-unsent deliveries back.

One endpoint (webhook or robot) gets at most ``OUTBOUND_PER_ENDPOINT`` requests at once:
its other claimed deliveries wait in the pool (not on a thread) and start as its requests
finish, so a slow or hanging endpoint holds that many threads at most while the others
send the other endpoints' messages (and claiming caps what it has claimed, see
:func:`scheduler.reminders.sender.claim`).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask
from sqlalchemy import func, select

from scheduler.channels.base import Outgoing, Result
from scheduler.extensions import db
from scheduler.reminders import policy, sender
from scheduler.reminders.models import WAITING, Delivery
from scheduler.util.time import now

log = logging.getLogger(__name__)


class SenderPool:
    """Claims due deliveries and sends them on ``concurrency`` threads until stopped."""

    def __init__(self, app: Flask, concurrency: int = 4, *, poll_interval: float = 1.0, name: str = "sender") -> None:
        self.app, self.concurrency, self.name = app, concurrency, name
        with app.app_context():
            lease = policy.lease().total_seconds()
            #: Requests one endpoint gets at once (0: no cap).
            self.per_endpoint = policy.per_endpoint()
        #: Claims whose lease ran out are looked for twice per lease; our own are renewed three times.
        self.reclaim_interval, self.renew_interval = min(lease / 2, 15.0), lease / 3
        self.poll_interval = poll_interval
        #: Claimed but unsent deliveries wait in the pool's queue (their leases renewed meanwhile):
        #: claiming many at once is what keeps the database rounds few.
        self.high_water = max(16 * concurrency, 64)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix=name)
        self._results: queue.SimpleQueue[tuple[str, Outgoing, Result]] = queue.SimpleQueue()
        #: Claimed and not yet recorded: delivery id → (claim token, its send; ``None`` while it waits
        #: for its endpoint's turn). Changed under ``_lock`` (sends start from the sender threads too).
        self._in_flight: dict[str, tuple[str, Future[list[Result]] | None]] = {}
        #: Per endpoint: its requests on a thread now, and its batches waiting for one of them to end.
        self._running: dict[int, int] = {}
        self._waiting: dict[int, deque[tuple[str, list[Outgoing]]]] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: How many deliveries this pool sent or tried (for logs and benchmarks).
        self.processed = 0

    def wake(self) -> None:
        """Look for work now (new deliveries were queued)."""
        self._wake.set()

    def start(self) -> threading.Thread:
        """Run the loop on a background thread (embedded mode)."""
        self._thread = threading.Thread(target=self.run, name=f"{self.name}-loop", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the loop to finish in-flight sends and give back the rest; wait for it when it is a thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """The loop (blocking until :meth:`stop`): one transaction a round records, renews and claims."""
        last_reclaim = last_renew = 0.0
        with self.app.app_context():
            while not self._stopping.is_set():
                try:
                    done = self._take_results()
                    recorded, claimed = len(done), 0
                    if done:
                        self._write(done)
                    if time.monotonic() - last_reclaim >= self.reclaim_interval:
                        last_reclaim = time.monotonic()
                        sender.reclaim_expired_leases()
                    if time.monotonic() - last_renew >= self.renew_interval:
                        last_renew = time.monotonic()
                        with self._lock:
                            tokens = {token for token, _ in self._in_flight.values()}
                        sender.renew_leases(tokens)
                    free = self.high_water - len(self._in_flight)
                    taken = sender.claim(min(free, 500)) if free > 0 else None
                    db.session.commit()
                    if done:
                        self._forget(done)
                    if taken is not None:
                        self._submit(taken)
                        claimed = taken.claimed
                except Exception:
                    db.session.rollback()
                    log.exception("%s: database round failed; trying again shortly", self.name)
                    if done:
                        self._put_back(done)
                    recorded, claimed = 0, 0
                    self._stopping.wait(self.poll_interval)
                if not recorded and not claimed:
                    self._wake.wait(self._idle_timeout() if len(self._in_flight) < self.high_water else self.poll_interval)
                    self._wake.clear()
        self._drain()

    def _in_context(self, work, *args):  # type: ignore[no-untyped-def]
        with self.app.app_context():
            try:
                result = work(*args)
                db.session.commit()
                return result
            except Exception:
                db.session.rollback()
                raise

    def _idle_timeout(self) -> float:
        """Sleep until the next delivery falls due (a retry, or one written ahead), at most the poll interval."""
        if self._in_flight:
            return self.poll_interval
        try:
            due = db.session.scalar(select(func.min(Delivery.next_attempt_at)).where(Delivery.status.in_(WAITING)))
            db.session.rollback()
        except Exception:
            db.session.rollback()
            return self.poll_interval
        if due is None:
            return self.poll_interval
        return min(max((due - now()).total_seconds(), 0.0), self.poll_interval)

    def _submit(self, taken: sender.Claim) -> None:
        for batch in sender.batches(taken.outgoing):
            endpoint = getattr(batch[0].recipient, "endpoint_id", None) if self.per_endpoint else None
            with self._lock:
                if endpoint is not None and self._running.get(endpoint, 0) >= self.per_endpoint:
                    self._waiting.setdefault(endpoint, deque()).append((taken.token, batch))
                    for outgoing in batch:
                        self._in_flight[outgoing.id] = (taken.token, None)
                    continue
                if endpoint is not None:
                    self._running[endpoint] = self._running.get(endpoint, 0) + 1
                self._start(taken.token, batch, endpoint)

    def _start(self, token: str, batch: list[Outgoing], endpoint: int | None) -> None:
        """Put one batch on a sender thread (under ``_lock``)."""
        future = self._executor.submit(sender.send_batch, batch)  # no app context: see Channel.send
        for outgoing in batch:
            self._in_flight[outgoing.id] = (token, future)
        future.add_done_callback(lambda f: self._finished(f, token, batch, endpoint))

    def _finished(self, future: Future[list[Result]], token: str, batch: list[Outgoing], endpoint: int | None) -> None:
        if not future.cancelled():
            for outgoing, result in zip(batch, future.result(), strict=True):
                self._results.put((token, outgoing, result))
        if endpoint is not None:
            with self._lock:  # the endpoint's turn passes to its next waiting batch, if any
                waiting = self._waiting.get(endpoint)
                if waiting and not self._stopping.is_set():
                    self._start(*waiting.popleft(), endpoint)
                else:
                    self._running[endpoint] -= 1
                    if not self._running[endpoint]:
                        del self._running[endpoint]
                if waiting is not None and not waiting:
                    del self._waiting[endpoint]
        self._wake.set()

    def _take_results(self) -> dict[str, list[tuple[Outgoing, Result]]]:
        """The results finished since the last round, by claim token."""
        done: dict[str, list[tuple[Outgoing, Result]]] = {}
        while True:
            try:
                token, outgoing, result = self._results.get_nowait()
            except queue.Empty:
                return done
            done.setdefault(token, []).append((outgoing, result))

    @staticmethod
    def _write(done: dict[str, list[tuple[Outgoing, Result]]]) -> None:
        for token, results in done.items():
            sender.record(token, results)

    def _put_back(self, done: dict[str, list[tuple[Outgoing, Result]]]) -> None:
        """Writing failed: keep the results for the next round (only the claim's holder writes, so
        writing again is safe); dropping them would re-send those messages once their lease ran out."""
        for token, results in done.items():
            for outgoing, result in results:
                self._results.put((token, outgoing, result))

    def _forget(self, done: dict[str, list[tuple[Outgoing, Result]]]) -> None:
        with self._lock:
            for results in done.values():
                for outgoing, _ in results:
                    self._in_flight.pop(outgoing.id, None)
                    self.processed += 1

    def _record_finished(self) -> int:
        """Write the finished results in a transaction of their own (used while stopping)."""
        done = self._take_results()
        if not done:
            return 0
        try:
            self._in_context(self._write, done)
        except Exception:
            self._put_back(done)
            raise
        self._forget(done)
        return sum(map(len, done.values()))

    def _drain(self) -> None:
        """Stopping: cancel what has not started, let the rest finish, record, give back."""
        unsent: dict[str, list[str]] = {}
        with self._lock:  # (stopping is set: no waiting batch starts any more)
            self._waiting.clear()
            for delivery_id, (token, future) in list(self._in_flight.items()):
                if future is None or future.cancel():
                    unsent.setdefault(token, []).append(delivery_id)
                    del self._in_flight[delivery_id]
        self._executor.shutdown(wait=True)
        in_flight = len(self._in_flight)
        def give_back() -> None:
            for token, ids in unsent.items():
                sender.release(token, ids)
        for attempt in range(3):  # a deadlock or a lost connection need not cost the results
            try:
                self._record_finished()
                break
            except Exception:
                log.exception("%s: recording the last results failed (attempt %d of 3)", self.name, attempt + 1)
                time.sleep(0.5)
        for attempt in range(3):
            try:
                self._in_context(give_back)
                break
            except Exception:
                log.exception("%s: giving claims back failed (attempt %d of 3); their leases will run out", self.name, attempt + 1)
                time.sleep(0.5)
        log.info("%s stopped: %d in-flight sends recorded, %d claims given back", self.name,
                 in_flight - len(self._in_flight), sum(map(len, unsent.values())))
