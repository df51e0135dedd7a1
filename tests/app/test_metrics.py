"""Request ids and request metrics (app/metrics.py) on the real app with a fake model."""

from __future__ import annotations

from tests.app.conftest import PNG_FIELD, metric


async def test_every_answer_has_a_request_id_and_is_counted_by_route(crowded):
    http, _ = crowded
    first = await http.post("/predict", files=PNG_FIELD)
    second = await http.post("/predict", files=PNG_FIELD)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    text = (await http.get("/metrics")).text
    assert metric(text, 'lenet_requests_total{method="POST",route="/predict",status="200"}') == 2


def test_the_latency_buckets_reach_past_the_longest_a_request_may_take():
    # An outside check: /read's 12-44 s answers all fell in +Inf, the last bucket being 10 s.
    from app.config import Settings
    from app.metrics import LATENCY_BUCKETS

    fields = Settings.model_fields
    longest = fields["body_timeout_s"].default + fields["request_timeout_s"].default
    assert LATENCY_BUCKETS[-1] >= 2 * longest and list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
