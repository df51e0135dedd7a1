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
