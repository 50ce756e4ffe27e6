"""The ``[intake]`` section: the limits of a digitisation batch (``emr-archive intake scans``).

Declared here, beside the write path's other sections, because :mod:`archive.intake` sits above
this layer and the run hands it this frozen model, read once with the rest of the settings. Each
limit keeps one paper record from taking a worker's memory or time; a scan over a limit is
quarantined with its reason (``oversized-scan``), a manifest over its limit refuses the batch.
"""

from __future__ import annotations

from pydantic import Field

from archive.core.section_base import Section

_MiB = 1024 * 1024


class IntakeSettings(Section):
    """Paper intake: scan and manifest limits, OCR time."""

    max_file_mib: int = Field(
        default=512, ge=1, le=16_384, description="largest scan file (PDF, TIFF, JPEG) in MiB"
    )
    max_pages: int = Field(
        default=2000, ge=1, le=100_000, description="most pages in one scan PDF or TIFF"
    )
    max_page_side_pt: float = Field(
        default=3500.0,
        gt=0,
        le=14_400,  # PDF's own limit on a page side (ISO 32000-1 annex C)
        description="longest page side in points (1/72 in) at the scan's resolution; A0 is 3370",
    )
    max_page_megapixels: int = Field(
        default=120,
        ge=1,
        le=2000,
        description="most pixels in one scanned page image, in millions (600 dpi A3 is 70)",
    )
    max_manifest_mib: int = Field(
        default=64, ge=1, le=1024, description="largest manifest CSV in MiB (split a larger one)"
    )
    ocr_timeout_s: float = Field(
        default=180.0,
        gt=0,
        le=3600,
        description="Tesseract's time per page; a page over it is archived without its text layer",
    )

    pages_per_group: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="pages per OCRmyPDF/Ghostscript call, joined after: bounds their memory",
    )

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mib * _MiB

    @property
    def max_pixels(self) -> int:
        return self.max_page_megapixels * 1_000_000

    @property
    def max_manifest_bytes(self) -> int:
        return self.max_manifest_mib * _MiB
