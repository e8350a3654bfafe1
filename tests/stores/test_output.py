"""The run output contract, over every backend: a run's lines in order, from a given line on."""

from control.stores.base import OutputLine

import pytest

from tests.utils.stores import opened


@pytest.fixture
def stores(store_url):
    with opened(store_url) as stores:
        yield stores


def test_lines_come_back_in_order_per_run(stores):
    output = stores.output
    for seq in range(5):
        output.add_output(OutputLine("a", "r1", seq, 10.0 + seq, "stdout", f"line {seq}"))
    output.add_output(OutputLine("a", "r2", 0, 11.0, "stderr", "other run"))
    output.add_output(OutputLine("b", "r1", 0, 11.0, "log", "other task"))
    assert stores.logs.flush(5)
    assert [line.text for line in output.output("a", "r1")] == [f"line {seq}" for seq in range(5)]
    assert [line.seq for line in output.output("a", "r1", after=2)] == [3, 4]
    assert [line.seq for line in output.output("a", "r1", limit=2)] == [0, 1]
    (other,) = output.output("a", "r2")
    assert (other.stream, other.text, other.created) == ("stderr", "other run", 11.0)
    assert output.output("a", "nope") == []


def test_long_lines_and_text_utf8_cannot_encode_are_kept(stores):
    long = "x" * 100_000
    stores.output.add_output(OutputLine("a", "r1", 0, 1.0, "stdout", long))
    stores.output.add_output(OutputLine("a", "r1", 1, 1.0, "stdout", "printed \ud800"))
    assert stores.logs.flush(5)
    assert [line.text for line in stores.output.output("a", "r1")] == [long, "printed \\ud800"]
