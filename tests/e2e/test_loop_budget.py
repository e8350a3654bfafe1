"""The worst inputs a client may send, against the real server, while /health is sampled:
no answer may wait behind work on the event loop for more than 100 ms."""

import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.slow

WORST = " | ".join(f"cron */{n} * * * *" for n in range(3, 11))  # the most parts allowed (8)
STALL_LIMIT = 0.1


class HealthSampler:
    """GET /health back to back from a thread of its own; keeps every latency."""

    def __init__(self, port: int):
        self.latencies: list[float] = []
        self._client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            assert self._client.get("/health").status_code == 200
            self.latencies.append(time.perf_counter() - began)
            time.sleep(0.005)

    def __enter__(self) -> "HealthSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._client.close()


def test_the_worst_inputs_never_stall_the_event_loop(start):
    service = start()
    c = httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=30)
    c.get("/tasks")  # warm
    with HealthSampler(service.port) as sampler:
        began = time.perf_counter()
        preview = c.post("/conditions/validate", json={"condition": WORST, "count": 50})
        took = time.perf_counter() - began
        assert preview.status_code == 200, preview.text
        assert preview.json()["complete"] is False and took < 1.0
        for refused in (
            " | ".join(["cron */7 * * * *"] * 9),
            "(" * 9 + "true" + ")" * 9,
            "(" * 490 + "true" + ")" * 490,
        ):
            response = c.post("/conditions/validate", json={"condition": refused, "count": 50})
            assert response.status_code == 422, response.text
        created = c.post(
            "/tasks", json={"name": "worst", "func": "tests.support_tasks.probes:quick", "start_cond": WORST}
        )
        assert created.status_code == 201, created.text
        assert c.patch("/tasks/quick", json={"start_cond": WORST}).status_code == 200
        for _ in range(5):
            assert c.get("/tasks").status_code == 200
            assert c.get("/tasks/worst/explain").status_code == 200
            assert c.post("/conditions/validate", json={"condition": WORST, "count": 50}).status_code == 200
    assert len(sampler.latencies) > 20
    worst = max(sampler.latencies)
    assert worst < STALL_LIMIT, f"/health waited {worst * 1000:.0f} ms ({len(sampler.latencies)} samples)"
