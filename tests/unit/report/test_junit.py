"""JUnit XML from hand-made run results, parsed back with ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    ChampionComparison,
    Check,
    RunResult,
    TargetOutcome,
    Verdict,
)
from edgeproof.report.junit import check_message, junit_xml, write_junit
from tests.helpers import run_info, summary

ORT = "onnxruntime-cpu"
SPEEDUP_FAIL = Check(
    name="latency.min_speedup",
    status="fail",
    value=0.2,
    low=0.19,
    high=0.21,
    limit=1.2,
    message="speedup 0.20x [0.19, 0.21] < min 1.20x",
)
KL_INCONCLUSIVE = Check(
    name="fidelity.max_kl",
    status="inconclusive",
    value=0.011,
    low=0.008,
    high=0.014,
    limit=0.01,
    message="mean KL 0.011 nats [0.008, 0.014] straddles max 0.01 nats",
)
ACC_PASS = Check(
    name="accuracy.max_drop_abs",
    status="pass",
    value=0.001,
    low=-0.002,
    high=0.004,
    limit=0.01,
    baseline=0.99,
    message="accuracy drop 0.10 pt [-0.20, 0.40] <= max 1.00 pt",
)
BASELINE_SKIP = Check(name="latency.min_speedup", status="skipped", message="baseline")


def _outcome(
    name: str, status: str, checks: tuple[Check, ...], error: str | None = None
) -> CandidateOutcome:
    baseline = name == "fp32"
    cand = Candidate(
        target=ORT,
        name=name,
        files=(Path(f"/tmp/{name}.onnx"),),
        recipe={},
        precision="fp32" if baseline else "int8",
        is_baseline=baseline,
    )
    reasons = tuple(f"{c.name}: {c.message}" for c in checks if c.status != "pass")
    return CandidateOutcome(
        candidate=cand,
        summary=None if error else summary(name, baseline=baseline),
        verdict=Verdict(candidate=name, status=status, checks=checks, reasons=reasons),
        error=error,
    )


def _result(targets: tuple[TargetOutcome, ...], data_failures: tuple[str, ...] = ()) -> RunResult:
    run = run_info(
        mlflow_run_id=None,
        mlflow_experiment_id=None,
        lineage=run_info().lineage.model_copy(update={"git_dirty": False}),
    )
    return RunResult(
        run=run, status="blocked", exit_code=1, targets=targets, data_failures=data_failures
    )


def _full_result() -> RunResult:
    ort = TargetOutcome(
        target=ORT,
        available=True,
        reason="lowest median latency",
        baseline="fp32",
        outcomes=(
            _outcome("fp32", "pass", (ACC_PASS, BASELINE_SKIP)),
            _outcome("dynamic-int8", "fail", (ACC_PASS, SPEEDUP_FAIL)),
            _outcome("static-qdq", "fail", (ACC_PASS, KL_INCONCLUSIVE)),
            _outcome("broken", "error", (), error="worker exited with code -9"),
        ),
        winner="fp32",
        status="pass",
        champion=ChampionComparison(
            registered_model="digits-cnn.onnxruntime-cpu",
            champion_version="3",
            status="worse",
            checks=(SPEEDUP_FAIL,),
            reason="slower than champion beyond noise",
        ),
    )
    ov = TargetOutcome(
        target="openvino-cpu",
        available=False,
        reason="openvino not installed",
        status="unavailable",
    )
    return _result((ort, ov), data_failures=("eval: column labels has nulls",))


def _parse(result: RunResult) -> ET.Element:
    return ET.fromstring(junit_xml(result).encode("utf-8"))


def _case(root: ET.Element, classname: str, name: str) -> ET.Element:
    found = [
        c
        for c in root.iter("testcase")
        if c.get("classname") == classname and c.get("name") == name
    ]
    assert len(found) == 1, (classname, name, len(found))
    return found[0]


def test_shape_one_suite_per_target_plus_data() -> None:
    root = _parse(_full_result())
    assert root.tag == "testsuites"
    assert root.get("name") == "edgeproof"
    names = [s.get("name") for s in root.findall("testsuite")]
    assert names == [
        "edgeproof.onnxruntime-cpu",
        "edgeproof.openvino-cpu",
        "edgeproof.data.dataset",
    ]
    ort = root.find("testsuite[@name='edgeproof.onnxruntime-cpu']")
    assert ort is not None
    cases = [(c.get("classname"), c.get("name")) for c in ort.findall("testcase")]
    assert cases == [
        (f"{ORT}.fp32", "accuracy.max_drop_abs"),
        (f"{ORT}.fp32", "latency.min_speedup"),
        (f"{ORT}.dynamic-int8", "accuracy.max_drop_abs"),
        (f"{ORT}.dynamic-int8", "latency.min_speedup"),
        (f"{ORT}.static-qdq", "accuracy.max_drop_abs"),
        (f"{ORT}.static-qdq", "fidelity.max_kl"),
        (f"{ORT}.broken", "measure"),
        (f"{ORT}.target", "winner"),
        (f"{ORT}.fp32", "champion"),
    ]


def test_counts_match_children_in_every_suite_and_root() -> None:
    root = _parse(_full_result())
    for element in [root, *root.findall("testsuite")]:
        cases = list(element.iter("testcase"))
        assert int(element.get("tests", "-1")) == len(cases)
        for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(element.get(attr, "-1")) == sum(c.find(tag) is not None for c in cases)
        assert element.get("time") is not None
    # 9 ORT cases + 1 unavailable + 1 data expectation
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "11",
        "4",
        "1",
        "2",
    )


def test_statuses_map_to_failure_error_skipped() -> None:
    root = _parse(_full_result())
    passed = _case(root, f"{ORT}.fp32", "accuracy.max_drop_abs")
    assert list(passed) == []
    assert _case(root, f"{ORT}.fp32", "latency.min_speedup").find("skipped") is not None
    fail = _case(root, f"{ORT}.dynamic-int8", "latency.min_speedup").find("failure")
    assert fail is not None and fail.get("type") == "gate"
    inconclusive = _case(root, f"{ORT}.static-qdq", "fidelity.max_kl").find("failure")
    assert inconclusive is not None and inconclusive.get("type") == "inconclusive"
    error = _case(root, f"{ORT}.broken", "measure").find("error")
    assert error is not None and error.get("message") == "worker exited with code -9"
    skipped = _case(root, "openvino-cpu.target", "available").find("skipped")
    assert skipped is not None and skipped.get("message") == "openvino not installed"
    data = root.find("testsuite[@name='edgeproof.data.dataset']/testcase/failure")
    assert data is not None and data.get("message") == "eval: column labels has nulls"
    champion = _case(root, f"{ORT}.fp32", "champion").find("failure")
    assert champion is not None and "slower than champion" in (champion.get("message") or "")
    assert "0.19-0.21" in (champion.text or "")
    assert list(_case(root, f"{ORT}.target", "winner")) == []


def test_failure_message_carries_numbers() -> None:
    root = _parse(_full_result())
    message = _case(root, f"{ORT}.dynamic-int8", "latency.min_speedup").find("failure")
    assert message is not None
    text = message.get("message") or ""
    for part in ("value 0.2", "CI 0.19-0.21", "limit 1.2", SPEEDUP_FAIL.message):
        assert part in text
    assert "baseline" not in text.replace(SPEEDUP_FAIL.message, "")
    assert "baseline 0.99" in check_message(ACC_PASS)


def test_blocked_target_fails_winner_case_and_error_target_errors() -> None:
    blocked = TargetOutcome(
        target=ORT,
        available=True,
        reason="no candidate passed the gates",
        outcomes=(_outcome("dynamic-int8", "fail", ()),),  # failing verdict, no checks
        status="blocked",
    )
    root = _parse(_result((blocked,)))
    winner = _case(root, f"{ORT}.target", "winner").find("failure")
    assert winner is not None and "no candidate passed" in (winner.get("message") or "")
    assert _case(root, f"{ORT}.dynamic-int8", "verdict").find("failure") is not None
    errored = blocked.model_copy(update={"status": "error", "reason": "build failed"})
    root = _parse(_result((errored,)))
    assert _case(root, f"{ORT}.target", "winner").find("error") is not None


def test_champion_error_is_an_error_and_not_worse_passes() -> None:
    base = _full_result().targets[0]
    champ = base.champion
    assert champ is not None
    for status, tag in (("error", "error"), ("not-worse", None), ("identical", None)):
        target = base.model_copy(
            update={"champion": champ.model_copy(update={"status": status, "checks": ()})}
        )
        case = _case(_parse(_result((target,))), f"{ORT}.fp32", "champion")
        assert [c.tag for c in case] == ([tag] if tag else [])


def test_properties_name_run_sha_and_winner() -> None:
    root = _parse(_full_result())
    suite = root.find("testsuite[@name='edgeproof.onnxruntime-cpu']")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_name"] == "digits-cnn-20261125T000000Z"
    assert props["git_sha"] == "0123456789abcdef"
    assert props["winner"] == "fp32"


def test_special_characters_are_escaped_and_round_trip() -> None:
    nasty = 'p90 <budget> & "quoted" \x1b[31mred\x1b[0m'
    check = SPEEDUP_FAIL.model_copy(update={"message": nasty})
    target = TargetOutcome(
        target=ORT,
        available=True,
        outcomes=(_outcome("dynamic-int8", "fail", (check,)),),
        status="blocked",
    )
    xml = junit_xml(_result((target,)))
    assert "<budget>" not in xml and "&lt;budget&gt;" in xml and "&amp;" in xml
    assert "\x1b" not in xml  # not representable in XML 1.0
    failure = _case(ET.fromstring(xml.encode()), f"{ORT}.dynamic-int8", check.name).find("failure")
    assert failure is not None
    assert 'p90 <budget> & "quoted"' in (failure.get("message") or "")


def test_run_error_gets_its_own_suite() -> None:
    result = _result(()).model_copy(update={"error": "config invalid", "status": "error"})
    root = _parse(result)
    assert root.get("errors") == "1"
    error = root.find("testsuite[@name='edgeproof.run']/testcase/error")
    assert error is not None and error.get("message") == "config invalid"


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "junit.xml"
    path.parent.mkdir()
    path.write_text("old", encoding="utf-8")
    assert write_junit(_full_result(), path) == path
    assert path.read_text(encoding="utf-8") == junit_xml(_full_result())
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]


def test_write_failure_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        write_junit(_full_result(), path)
    assert path.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]
