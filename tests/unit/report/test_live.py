"""The run's live progress: the flows' log lines become one row per target."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from edgeproof.report.live import RUN_LOGGERS, RunProgress, follow_run

ORT = "onnxruntime-cpu"
LINES = [
    "validating data (eval, calibration) with Great Expectations",
    "gating target onnxruntime-cpu in-process",
    f"{ORT}: building baseline",
    f"{ORT}: optimizing dynamic-int8",
    f"{ORT}: optimizing static-qdq",
    f"{ORT}: loading baseline fp32",
    f"{ORT}: measuring dynamic-int8 against fp32",
]


def test_rows_follow_phases_and_say_what_is_left() -> None:
    progress = RunProgress.for_targets({ORT: 2, "openvino-cpu": 3})
    for second, line in enumerate(LINES):
        progress.update(line, now=progress.started + second)
    row = progress.rows[ORT]
    assert (row.phase, row.detail, row.left()) == ("measure", "dynamic-int8", "1 of 2 to measure")
    assert progress.rows["openvino-cpu"].phase == "waiting"
    assert progress.stage == "gating target onnxruntime-cpu in-process"
    progress.update(
        f"{ORT}: timing static-qdq against dynamic-int8 head to head", now=progress.started + 8
    )
    assert (row.phase, row.detail) == ("head to head", "static-qdq vs dynamic-int8")
    progress.update(f"{ORT}: measuring static-qdq against champion v3", now=progress.started + 9)
    assert (row.phase, row.detail) == ("vs champion", "static-qdq vs v3")
    progress.update(f"{ORT}: finished: pass, winner static-qdq", now=progress.started + 10)
    assert (row.phase, row.detail, row.left()) == ("done", "pass, winner static-qdq", "")
    assert row.elapsed(progress.started + 99) == 8  # from its first line to its last


def test_a_line_of_another_kind_is_noise_and_warnings_are_kept() -> None:
    progress = RunProgress.for_targets({ORT: 1})
    assert progress.update("Created task run 'decide-0' for task 'decide'") is None
    assert progress.update("tflite-cpu: optimizing x") is None  # not a target of this run
    assert progress.update(f"{ORT}: warning: the machine is busy") is not None
    assert progress.warnings == [f"{ORT}: warning: the machine is busy"]
    assert progress.rows[ORT].phase == "waiting"
    retry = "Task run failed with exception: TrackingError('x') - Retry 1/2 will start 3 s"
    assert progress.update(retry, task="open-tracking-0") == f"Task run 'open-tracking-0' - {retry}"
    assert progress.warnings[-1].endswith("Retry 1/2 will start 3 s")


def test_off_a_terminal_each_step_is_one_plain_line() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=False, width=120)
    logger = logging.getLogger(RUN_LOGGERS[1])
    logger.setLevel(logging.INFO)
    with follow_run(console, {ORT: 2}) as progress:
        for line in LINES:
            logger.info(line)
    logger.info(f"{ORT}: optimizing after the run")  # detached: not shown
    shown = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in shown] == [
        "data gate",
        "gating target onnxruntime-cpu in-process",
        *LINES[2:],
    ]
    assert progress.rows[ORT].optimized == 2
    assert "\x1b[" not in stream.getvalue()  # no terminal codes in a log


def test_on_a_terminal_the_table_shows_every_target() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    logger = logging.getLogger(RUN_LOGGERS[1])
    logger.setLevel(logging.INFO)
    with follow_run(console, {ORT: 2, "openvino-cpu": None}):
        for line in LINES:
            logger.info(line)
    screen = stream.getvalue()
    assert "1 of 2 to measure" in screen and "openvino-cpu" in screen and "waiting" in screen
