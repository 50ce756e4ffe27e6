"""Streaming the ``GIAMDINHHS`` envelope: where each HOSO lies in the file, and its XML1.

A day file of a large hospital is hundreds of MB. It is fed to a hardened expat push parser in
1 MiB chunks (:mod:`~archive.sources.qd130.hardening`), and of each ``HOSO`` only its byte range
in the file and the Base64 text of its ``XML1`` (the encounter summary, a few kB) are kept, for
as long as that HOSO is being read; every other ``NOIDUNGFILE`` is counted, never held. Memory
is therefore one chunk plus one XML1, whatever the file's size. The byte range lets the collector
read the HOSO back byte for byte later (it is what the archive embeds).

A file is either a ``GIAMDINHHS`` envelope (``THONGTINHOSO/DANHSACHHOSO/HOSO``, any number) or a
single ``HOSO``. A file that is not well-formed, is hostile, or whose ``SOLUONGHOSO`` disagrees
with the HOSO it holds raises :class:`XmlRefusedError`: the caller holds the whole file back,
because what a broken file seemed to hold cannot be trusted.

:meth:`EnvelopeReader.piece` reads one byte range of a large envelope on its own (the pieces of
a day file are read on several cores, :mod:`~archive.sources.qd130.pieces`): a range after the
first is read behind :data:`OPEN`, the start tags a ``DANHSACHHOSO``'s content lies in, and a
range before the last is closed by :data:`CLOSE`. Read whole (``final``), a range so framed
parses only if it begins and ends between the list's elements, outside any comment, section or
tag, and then expat meets its bytes in the state the whole file's reading would meet them in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Final
from xml.parsers import expat

from archive.sources.qd130.hardening import XmlRefusedError, harden
from archive.sources.quarantine import QuarantineReason

R = QuarantineReason
CHUNK: Final = 1 << 20
_ENVELOPE_HOSO: Final = ("GIAMDINHHS", "THONGTINHOSO", "DANHSACHHOSO", "HOSO")
_FACILITY_PATH: Final = ("GIAMDINHHS", "THONGTINDONVI", "MACSKCB")
_COUNT_PATH: Final = ("GIAMDINHHS", "THONGTINHOSO", "SOLUONGHOSO")
_SIGNATURE_PATH: Final = ("GIAMDINHHS", "CHUKYDONVI")
# The last names of the paths above: only for these is the element's path built and compared
# (twice per element of a 500 MB file otherwise).
_PATH_ENDS: Final = frozenset({"HOSO", "MACSKCB", "SOLUONGHOSO", "CHUKYDONVI"})
OPEN: Final = b"<GIAMDINHHS><THONGTINHOSO><DANHSACHHOSO>"
CLOSE: Final = b"</DANHSACHHOSO></THONGTINHOSO></GIAMDINHHS>"


@dataclass(slots=True)
class HosoRef:
    """One HOSO of a file: its ordinal (1-based), byte range and what pass 1 needs."""

    ordinal: int
    start: int  # offset of "<HOSO"
    end_tag: int  # offset of "</HOSO" (the range ends at the next ">")
    facility: str | None  # the envelope's MACSKCB (None for a bare HOSO file)
    kinds: list[str] = field(default_factory=list)  # LOAIHOSO, in order
    xml1: bytes | None = None  # Base64 text of the XML1 FILEHOSO
    oversized: bool = False  # a NOIDUNGFILE beyond the HOSO limit


class _State:
    def __init__(self, what: str, *, max_depth: int, max_hoso: int) -> None:
        self.what, self.max_depth, self.max_hoso = what, max_depth, max_hoso
        self.path: list[str] = []
        self.done: list[HosoRef] = []
        self.current: HosoRef | None = None
        self.text: list[bytes] | None = None  # the text being captured
        self.size = 0
        self.kind = ""
        self.facility: str | None = None
        self.declared: str | None = None  # SOLUONGHOSO
        self.count = 0
        self.root: str | None = None
        self.in_signature = False  # inside GIAMDINHHS/CHUKYDONVI
        self.signed = False  # CHUKYDONVI holds something, or an XML signature is anywhere
        self.shift = 0  # file offset of the parser's byte 0 (a piece: its start minus OPEN)
        self.facility_at: int | None = None  # ``count`` when the first MACSKCB was read


class EnvelopeReader:
    """Read one file's HOSO with :meth:`hosos`; a broken file raises :class:`XmlRefusedError`."""

    def __init__(self, what: str, *, max_depth: int = 16, max_hoso_bytes: int) -> None:
        self._s = _State(what, max_depth=max_depth, max_hoso=max_hoso_bytes)
        self._parser = expat.ParserCreate()
        self._parser.buffer_text = True
        self._parser.buffer_size = 1 << 16
        harden(self._parser, what)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        # Text is handed over only while it is wanted (see :meth:`_listen`): most of a file is
        # the Base64 of tables pass 1 does not read, and each piece would become a Python str.
        self._parser.CharacterDataHandler = None

    @property
    def signed(self) -> bool:
        """Whether the file carries a facility signature to check (after :meth:`hosos`)."""
        return self._s.signed

    @property
    def count(self) -> int:
        """How many HOSO the file held (after :meth:`hosos` is exhausted)."""
        return self._s.count

    @property
    def facility(self) -> tuple[str | None, int | None]:
        """The last ``MACSKCB`` read, and the HOSO count when the first was (None: none was
        read): the HOSO counted up to then took theirs from before."""
        return self._s.facility, self._s.facility_at

    @property
    def declared(self) -> str | None:
        """The last ``SOLUONGHOSO`` read."""
        return self._s.declared

    def hosos(self, handle: IO[bytes]) -> Iterator[HosoRef]:
        yield from self._read(handle, None)
        self.check()

    def piece(
        self, handle: IO[bytes], start: int, end: int, *, first: int, last: bool
    ) -> Iterator[HosoRef]:
        """The HOSO of the bytes ``start``..``end`` of a file, the first one numbered ``first``
        (by the caller's count); ``start`` 0 is the file's beginning, ``last`` its end. Not
        checked as a whole file (:meth:`check`): the caller merges the pieces first."""
        s = self._s
        s.count = first - 1
        if start:
            s.shift = start - len(OPEN)
            self._feed(OPEN, final=False)
        handle.seek(start)
        yield from self._read(handle, None if last else end - start, close=b"" if last else CLOSE)

    def _read(self, handle: IO[bytes], size: int | None, close: bytes = b"") -> Iterator[HosoRef]:
        s = self._s
        left = size
        while chunk := handle.read(CHUNK if left is None else min(CHUNK, left)):
            if left is not None:
                left -= len(chunk)
            self._feed(chunk, final=False)
            yield from s.done
            s.done.clear()
        self._feed(close, final=True)
        yield from s.done
        s.done.clear()

    def check(self) -> None:
        """What the whole file must satisfy once every HOSO was read."""
        s = self._s
        if s.root not in ("GIAMDINHHS", "HOSO"):
            raise XmlRefusedError(R.MALFORMED_XML, f"{s.what} is neither a GIAMDINHHS nor a HOSO")
        if s.declared is not None and s.declared.strip() != str(s.count):
            raise XmlRefusedError(
                R.MALFORMED_XML,
                f"{s.what} holds {s.count} HOSO but SOLUONGHOSO says otherwise: "
                "the file is incomplete",
            )

    def _feed(self, chunk: bytes, *, final: bool) -> None:
        try:
            self._parser.Parse(chunk, final)
        except expat.ExpatError as e:
            raise XmlRefusedError(
                R.MALFORMED_XML,
                f"{self._s.what} is not well-formed XML "
                f"(line {e.lineno}, column {e.offset}: {expat.ErrorString(e.code)})",
            ) from None

    def _start(self, name: str, _attrs: object) -> None:
        s = self._s
        s.path.append(name)
        if len(s.path) > s.max_depth:
            raise XmlRefusedError(R.HOSTILE_XML, f"{s.what} nests deeper than {s.max_depth} levels")
        if s.root is None:
            s.root = name
        if s.in_signature or name == "Signature" or name.endswith(":Signature"):
            s.signed = True
        where = tuple(s.path) if name in _PATH_ENDS else None
        if where == _SIGNATURE_PATH:
            s.in_signature = True
            self._listen()
        if name == "HOSO" and (where == _ENVELOPE_HOSO or where == ("HOSO",)):
            s.count += 1
            s.current = HosoRef(s.count, s.shift + self._parser.CurrentByteIndex, 0, s.facility)
        elif where in (_FACILITY_PATH, _COUNT_PATH) or (s.current and self._captured(name)):
            s.text, s.size = [], 0
            self._listen()
        elif s.current is not None and name == "FILEHOSO":
            s.kind = ""  # a FILEHOSO whose LOAIHOSO comes late is not taken for the last one's

    def _listen(self) -> None:
        """Have expat hand over text when it is captured or inside ``CHUKYDONVI``, only then.
        (pyexpat hands buffered text to the handler it was meant for before a change.)"""
        s = self._s
        wanted = s.text is not None or s.in_signature
        if wanted != (self._parser.CharacterDataHandler is not None):
            self._parser.CharacterDataHandler = self._chars if wanted else None

    def _captured(self, name: str) -> bool:
        """LOAIHOSO, and the NOIDUNGFILE of XML1 only: the other tables' Base64 (most of the
        file) is neither held nor even copied; a HOSO too large is caught by its byte range."""
        return name == "LOAIHOSO" or (name == "NOIDUNGFILE" and self._s.kind == "XML1")

    def _chars(self, data: str) -> None:
        s = self._s
        if s.in_signature and not s.signed and data.strip():
            s.signed = True
        if s.text is None:
            return
        s.size += len(data)
        if s.size > s.max_hoso:
            if s.current is not None:
                s.current.oversized = True
            s.text = []  # keep counting, stop holding
            return
        s.text.append(data.encode("utf-8"))

    def _end(self, name: str) -> None:
        s = self._s
        where = tuple(s.path) if name in _PATH_ENDS else None
        s.path.pop()
        if where == _SIGNATURE_PATH:
            s.in_signature = False
        text, s.text = (b"".join(s.text) if s.text is not None else None), None
        if text is not None or where == _SIGNATURE_PATH:
            self._listen()  # what was wanted may no longer be
        if text is None and name != "HOSO":
            return
        if where == _FACILITY_PATH:
            s.facility = (text or b"").decode("utf-8").strip()
            s.facility_at = s.count if s.facility_at is None else s.facility_at
        elif where == _COUNT_PATH:
            s.declared = (text or b"").decode("utf-8")
        elif s.current is not None and name == "LOAIHOSO":
            s.kind = (text or b"").decode("utf-8").strip()
            s.current.kinds.append(s.kind)
        elif s.current is not None and name == "NOIDUNGFILE" and s.kind == "XML1":
            s.current.xml1 = text
        elif s.current is not None and name == "HOSO":
            s.current.end_tag = s.shift + self._parser.CurrentByteIndex
            if s.current.end_tag - s.current.start > s.max_hoso:
                s.current.oversized = True
            s.done.append(s.current)
            s.current, s.kind = None, ""
