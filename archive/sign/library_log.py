"""pyHanko's own log, captured while a document is validated instead of printed.

pyHanko logs what it meets in a hostile file at WARNING, with the exception's traceback; with no
logging configured Python prints that on stderr, so ``verify-file`` on a forged copy showed
pages of tracebacks before its one-line verdict. Inside :func:`captured_library_log` every
record of pyHanko's loggers becomes one line in the caller's list (the validation report carries
it; ``verify-file --verbose`` prints it) and goes nowhere else. Outside it, records reach the
root logger's handlers as they always did. A context variable, not a global, holds the lists, so
validations in other threads or tasks keep their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["captured_library_log"]

_LOGGERS = ("pyhanko", "pyhanko_certvalidator")
_MAX_LINE = 300
_collectors: ContextVar[tuple[list[str], ...]] = ContextVar("library_log", default=())
_lock = threading.Lock()
_users = 0


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        collectors = _collectors.get()
        if not collectors:
            _forward(record)
            return
        line = f"{record.levelname} {record.name}: {record.getMessage()}".splitlines()[0]
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({type(record.exc_info[1]).__name__})"  # the type, not the traceback
        for lines in collectors:
            lines.append(line[:_MAX_LINE])


def _forward(record: logging.LogRecord) -> None:
    """What propagation would have done: the root logger's handlers, else the last resort."""
    root = logging.getLogger()
    handlers = root.handlers or ([logging.lastResort] if logging.lastResort else [])
    for handler in handlers:
        if record.levelno >= handler.level:
            handler.handle(record)


_HANDLER = _Capture()


@contextmanager
def captured_library_log() -> Iterator[list[str]]:
    """Collect pyHanko's log records as lines while the block runs (nested blocks: each)."""
    global _users
    lines: list[str] = []
    with _lock:
        if _users == 0:
            for name in _LOGGERS:
                logger = logging.getLogger(name)
                logger.addHandler(_HANDLER)
                logger.propagate = False
        _users += 1
    token = _collectors.set((*_collectors.get(), lines))
    try:
        yield lines
    finally:
        _collectors.reset(token)
        with _lock:
            _users -= 1
            if _users == 0:
                for name in _LOGGERS:
                    logger = logging.getLogger(name)
                    logger.removeHandler(_HANDLER)
                    logger.propagate = True
