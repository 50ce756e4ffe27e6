"""PDF checks by external tools: ``qpdf --check`` and poppler's ``pdffonts``.

They complement :func:`archive.render.pdfa.check_pdfa3b` with independent parsers (qpdf for the file
structure and stream encodings, poppler for the fonts a viewer actually loads). They run a
subprocess on a temporary copy of the bytes, so tests and the verifier's deeper pass use them;
the pure checks never do. A missing tool is a failed check that says which package to install.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

from archive.render.pdfa import PdfaCheck


def qpdf_check(pdf: bytes, *, timeout_s: float = 60) -> PdfaCheck:
    """``qpdf --check``: cross-reference tables, object streams and stream encodings."""
    result = _tool(["qpdf", "--check"], pdf, "qpdf", timeout_s)
    if isinstance(result, PdfaCheck):
        return result
    code, output = result
    tail = " | ".join(output.strip().splitlines()[-2:])
    return PdfaCheck("qpdf", code == 0, f"exit {code}: {tail}")


def pdffonts_check(pdf: bytes, *, timeout_s: float = 60) -> PdfaCheck:
    """``pdffonts``: every font poppler finds (page resources, forms, annotations) embedded."""
    result = _tool(["pdffonts"], pdf, "poppler-utils", timeout_s)
    if isinstance(result, PdfaCheck):
        return result
    code, output = result
    if code != 0:
        return PdfaCheck("pdffonts", False, f"exit {code}: {output.strip()[-200:]}")
    rows = _pdffonts_rows(output)
    missing = [name for name, embedded in rows if embedded != "yes"]
    if missing:
        return PdfaCheck("pdffonts", False, "not embedded: " + ", ".join(missing))
    return PdfaCheck("pdffonts", True, f"{len(rows)} font(s), all embedded")


def _pdffonts_rows(output: str) -> list[tuple[str, str]]:
    lines = output.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("---")), len(lines))
    rows = []
    for line in lines[start:]:
        fields = line.split()
        if len(fields) >= 6:  # name ... emb sub uni object-id generation
            rows.append((fields[0], fields[-5]))
    return rows


def _tool(
    argv: list[str], pdf: bytes, package: str, timeout_s: float
) -> PdfaCheck | tuple[int, str]:
    name = argv[0]
    if shutil.which(name) is None:
        return PdfaCheck(name, False, f"{name} is not installed: apt-get install {package}")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        try:
            done = subprocess.run(
                [*argv, f.name], capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return PdfaCheck(name, False, f"{name} did not finish within {timeout_s:g} s")
    return done.returncode, done.stdout + done.stderr
