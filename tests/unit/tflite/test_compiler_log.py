"""``edgetpu_compiler -s`` output parsed into op coverage, on logs modelled on real ones.

The logs in ``logs/`` follow compiler outputs published in google-coral/edgetpu issues
(#342, #433, #512, #671, #829, #313) and the Coral "Edge TPU Compiler" page: v14-v16
summaries, the ``-s`` operator table, and the failure messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.targets.litert.compiler_log import parse_compiler_log

LOGS = Path(__file__).parent / "logs"


def _parse(name: str):
    return parse_compiler_log((LOGS / name).read_text(encoding="utf-8"))


def test_every_op_mapped() -> None:
    log = _parse("all_mapped.txt")
    assert log.compiled and log.failure is None and log.compile_ms == 352
    assert log.to_record() == {
        "accelerator": "edgetpu",
        "ops_total": 3,
        "ops_accelerator": 3,
        "share": 1.0,
        "first_fallback": None,
        "subgraphs": 1,
        "on_chip_mb": round(27.75 * 1024 / 1e6, 4),
        "off_chip_mb": 0.0,
        "compiler_version": "16.0.384591198",
    }


def test_a_cpu_fallback_mid_graph_names_the_cause_not_its_consequences() -> None:
    """The unmapped FULLY_CONNECTED row comes first in the table, but "otherwise supported,
    but not mapped" is what the ops *after* a fallback report: SOFTMAX is the cause."""
    log = _parse("cpu_fallback.txt")
    record = log.to_record()
    assert (record["ops_total"], record["ops_accelerator"]) == (15, 11)
    assert record["share"] == round(11 / 15, 4)
    assert record["first_fallback"] == "SOFTMAX (Operation is working on an unsupported data type)"
    assert record["on_chip_mb"] == round(1.23 * 1024**2 / 1e6, 4)
    assert sum(r.count for r in log.rows if r.mapped) == 11  # the table agrees with the summary


def test_more_than_one_subgraph() -> None:
    log = _parse("two_subgraphs.txt")
    record = log.to_record()
    assert (record["ops_total"], record["ops_accelerator"], record["subgraphs"]) == (155, 2, 1)
    assert record["first_fallback"] == "TRANSPOSE (Operation not supported)"
    assert record["off_chip_mb"] == round(41.75 * 1024 / 1e6, 4)
    assert record["compiler_version"] == "15.0.340273435"
    assert [(r.op, r.count) for r in log.rows if r.op == "PAD"] == [("PAD", 1), ("PAD", 17)]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (
            "failed_interpreter.txt",
            "Compilation failed: Model failed in Tflite interpreter. Please ensure model can "
            "be loaded/run in Tflite interpreter. (ERROR: Attempting to use a delegate that "
            "only supports static-sized tensors with a graph that has dynamic-sized tensors.)",
        ),
        (
            "not_quantized.txt",
            "Invalid model: mobilenet_v2_1.0_224_quant.tflite: Model not quantized",
        ),
        ("internal_error.txt", "Internal compiler error. Aborting!"),
    ],
)
def test_a_failed_compilation_says_why(name: str, reason: str) -> None:
    log = _parse(name)
    assert not log.compiled
    assert log.failure == reason
    assert log.ops_total == 0 and log.share is None


def test_a_log_without_the_table_and_without_cpu_ops_means_all_mapped() -> None:
    text = (LOGS / "all_mapped.txt").read_text(encoding="utf-8").split("Operator ")[0]
    record = parse_compiler_log(text).to_record()
    assert (record["ops_total"], record["ops_accelerator"], record["share"]) == (3, 3, 1.0)
