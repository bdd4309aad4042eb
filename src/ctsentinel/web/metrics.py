"""Prometheus metrics (`/metrics`, and `ctsentinel run` with `[monitor] metrics_port`): per log its
position, tree size, backlog, head age, errors and misbehaviour; alerts by state; deliveries by status.

Read from the store at scrape time, so the web server and any number of `run` processes report the same
figures; the scrape runs off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ctsentinel.monitor.status import LogStatus, log_statuses
from ctsentinel.store import DeliveryStatus, Store
from ctsentinel.store.models import AlertState
from ctsentinel.web.listening import listening
from ctsentinel.web.services import services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Snapshot:
    logs: list[LogStatus]
    alerts: dict[AlertState, int]
    deliveries: dict[DeliveryStatus, int]


def snapshot(store: Store) -> Snapshot:
    return Snapshot(
        logs=log_statuses(store, datetime.now(UTC)),
        alerts=store.browse.alert_counts(),
        deliveries=store.outbox.counts(),
    )


class _Collector(Collector):
    def __init__(self, data: Snapshot) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        per_log = {
            "position": GaugeMetricFamily(
                "ctsentinel_log_position", "Next entry index to verify", labels=["log"]
            ),
            "tree_size": GaugeMetricFamily(
                "ctsentinel_log_tree_size", "Size of the last verified tree head", labels=["log"]
            ),
            "backlog": GaugeMetricFamily(
                "ctsentinel_log_backlog_entries", "Entries logged but not yet verified", labels=["log"]
            ),
            "age": GaugeMetricFamily(
                "ctsentinel_log_head_age_seconds", "Age of the last verified tree head", labels=["log"]
            ),
            "misbehaving": GaugeMetricFamily(
                "ctsentinel_log_misbehaving", "1 when the log was caught misbehaving", labels=["log"]
            ),
        }
        errors = CounterMetricFamily("ctsentinel_log_errors", "Errors talking to the log", labels=["log"])
        for log in self.data.logs:
            labels = [log.url]
            if log.position is not None:
                per_log["position"].add_metric(labels, log.position)
            if log.tree_size is not None:
                per_log["tree_size"].add_metric(labels, log.tree_size)
            if log.backlog is not None:
                per_log["backlog"].add_metric(labels, log.backlog)
            if log.last_tree_head_age_seconds is not None:
                per_log["age"].add_metric(labels, log.last_tree_head_age_seconds)
            per_log["misbehaving"].add_metric(labels, 1 if log.misbehaving else 0)
            errors.add_metric(labels, log.errors)
        yield from per_log.values()
        yield errors
        alerts = GaugeMetricFamily("ctsentinel_alerts", "Alerts by state", labels=["state"])
        for state, count in self.data.alerts.items():
            alerts.add_metric([state.value], count)
        yield alerts
        deliveries = GaugeMetricFamily(
            "ctsentinel_deliveries", "Alert deliveries by status", labels=["status"]
        )
        for status, count in self.data.deliveries.items():
            deliveries.add_metric([status.value], count)
        yield deliveries


def exposition(store: Store) -> bytes:
    """The Prometheus text format of the store's figures now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshot(store)))
    return generate_latest(registry)


async def metrics(request: web.Request) -> web.Response:
    svc = services(request)
    body = await svc.query(exposition, svc.reader)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/metrics", metrics)


@contextlib.asynccontextmanager
async def metrics_server(database: str, port: int, *, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """`/metrics` alone on host:port (for `ctsentinel run`), read from the database; yields its URL."""
    store = Store.open_for_browsing(database, time_limit=5.0)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctsentinel-metrics")

    async def handler(_request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(executor, exposition, store)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    try:
        async with listening(app, host, port, f"[monitor] metrics_port {port}: cannot listen"):
            yield f"http://{host}:{port}/metrics"
    finally:
        executor.shutdown(wait=False)
        store.close()
