"""pyHanko's log while validating goes into the report; outside a validation it is untouched."""

from __future__ import annotations

import logging

import pytest

from archive.sign import captured_library_log


def test_records_inside_a_capture_become_one_line_each_and_reach_no_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("pyhanko.sign.validation.ades")
    with (
        caplog.at_level(logging.DEBUG),
        captured_library_log() as outer,
        captured_library_log() as inner,  # nested: the validator's capture inside the CLI's
    ):
        try:
            raise ValueError("inside")
        except ValueError:
            logger.warning("chain failed\nsecond line", exc_info=True)
    assert inner == ["WARNING pyhanko.sign.validation.ades: chain failed (ValueError)"]
    assert outer == inner  # the CLI's capture sees what the validator's saw
    assert caplog.records == []  # nothing reached the root logger: no traceback on stderr


def test_records_outside_a_capture_reach_the_root_handlers_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with captured_library_log():
        pass
    with caplog.at_level(logging.INFO):
        logging.getLogger("pyhanko.sign.signers").info("signed")
    assert [r.getMessage() for r in caplog.records] == ["signed"]
    assert logging.getLogger("pyhanko").propagate
