"""The MLflow tags that say which device measured a candidate: its kind and the board."""

from __future__ import annotations

from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.run_log import device_tags

FINGERPRINT = {"cpu_model": "Cortex-A76", "machine": "aarch64", "cores": 4}


def test_two_boards_of_one_kind_share_the_device_digest_and_differ_by_id() -> None:
    a = device_tags({"fingerprint": {**FINGERPRINT, "device_id": "serial:aaaa"}})
    b = device_tags({"fingerprint": {**FINGERPRINT, "device_id": "serial:bbbb"}})
    assert a[tagnames.DEVICE] == b[tagnames.DEVICE]
    assert (a[tagnames.DEVICE_ID], b[tagnames.DEVICE_ID]) == ("serial:aaaa", "serial:bbbb")


def test_no_id_readable_no_id_tag() -> None:
    assert tagnames.DEVICE_ID not in device_tags({"fingerprint": FINGERPRINT})
    assert device_tags({}) == {}
