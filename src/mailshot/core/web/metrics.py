"""Prometheus metrics: a registry per part app (``app.state.metrics``), the errors it
answered counted by code, and one ``/metrics`` text endpoint over every part's registry
(a key with the scope ``metrics``). The parts' gauges: :mod:`mailshot.crm.metrics`,
:mod:`mailshot.esp.metrics`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["PartMetrics", "install", "metrics_response"]


class PartMetrics:
    """One part's registry and its error counter."""

    def __init__(self, part: str, collectors: Iterable[Collector]) -> None:
        self.part = part
        self.registry = CollectorRegistry(auto_describe=False)
        self.errors = Counter(
            "mailshot_errors",
            "Errors answered by the API, by catalogued code.",
            ["part", "code"],
            registry=self.registry,
        )
        for collector in collectors:
            self.registry.register(collector)

    def count_error(self, code: str) -> None:
        self.errors.labels(self.part, code).inc()


def install(
    app: FastAPI, part: str, collectors: Iterable[Collector], guard: Callable[..., Any]
) -> PartMetrics:
    """Give ``app`` a registry, its error handlers counting into it (``state.on_error``),
    and a ``/metrics`` route of its own (``/crm/metrics`` or ``/esp/metrics`` when the part
    is mounted; the combined app's ``/metrics`` merges both), behind ``guard``: the part's
    dependency requiring a key with the scope ``metrics``."""
    metrics = PartMetrics(part, collectors)
    app.state.metrics = metrics
    app.state.on_error = metrics.count_error

    def part_metrics(_: Any = Depends(guard)) -> Response:
        return metrics_response([metrics])

    app.add_api_route("/metrics", part_metrics, methods=["GET"], include_in_schema=False)
    return metrics


class _Merged(Collector):
    """Families of several registries, merged by name (their samples differ by labels)."""

    def __init__(self, registries: list[CollectorRegistry]) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for registry in self.registries:
            for family in registry.collect():
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()


def metrics_response(parts: list[PartMetrics]) -> Response:
    """The Prometheus text format over the given parts' registries."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([p.registry for p in parts]))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
