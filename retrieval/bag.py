"""The BagIt side of a dossier (RFC 8493): bag the export's directory with sha256 and sha512
manifests, zip it where no reader sees half of it, validate a zip as an inspector would, and the
README that tells an inspector how to check everything in it without our software's word."""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Final

import bagit  # type: ignore[import-untyped]

from retrieval.errors import DossierError

README_NAME: Final = "README.txt"
_CHECKSUMS: Final = ["sha256", "sha512"]


def make_bag(bag_dir: Path, context: Mapping[str, str], now: datetime) -> None:
    info = {
        "Source-Organization": context.get("organization", "emr-archive"),
        "Bagging-Date": f"{now:%Y-%m-%d}",
        "External-Description": "Archived discharge summaries (PDF/A-3b, PAdES B-LTA) with "
        "their RFC 4998 evidence records, embedded FHIR data and verification reports",
        "External-Identifier": bag_dir.name,
        "Bag-Software-Agent": "emr-archive retrieval",
    }
    logging.getLogger("bagit").setLevel(logging.WARNING)
    try:
        bag = bagit.make_bag(str(bag_dir), bag_info=info, checksums=_CHECKSUMS, processes=1)
        bag.validate(completeness_only=False)
    except (bagit.BagError, OSError) as e:
        raise DossierError(f"the BagIt bag could not be built or did not validate: {e}") from e


def zip_bag(bag_dir: Path, target: Path) -> None:
    """The bag's directory at the zip's top level, files in sorted order; written beside the
    target and renamed, so a reader never sees half a zip."""
    partial = target.with_name(f".{target.name}.partial")
    partial.touch(mode=0o600)  # the dossier is PHI: readable by its owner only
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in bag_dir.rglob("*") if p.is_file()):
            z.write(path, f"{bag_dir.name}/{path.relative_to(bag_dir).as_posix()}")
    shutil.move(partial, target)


def validate_zip(path: Path) -> bagit.Bag:
    """Unzip into a temporary directory and validate the bag fully (what an inspector does)."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as z:
        z.extractall(tmp)
        (top,) = {Path(n).parts[0] for n in z.namelist()}
        bag = bagit.Bag(str(Path(tmp) / top))
        bag.validate()
        return bag


def readme_text(*, renewed: bool) -> str:
    """What an inspector reads first: what each file is and how to check it with tools that
    are not ours (the bag itself, the PDF's signature, the evidence record)."""
    renewal = (
        _RENEWED
        if renewed
        else "No renewed copies: export again with `--renew` for PDFs that carry a fresh\n"
        "document timestamp of their own.\n"
    )
    return _README.format(renewal=renewal)


_README = """\
Dossier exported from emr-archive (an electronic medical-record archive)
=======================================================================

1. The bag. Every file under data/ is listed with its SHA-256 and SHA-512 in the bag's
   manifests (BagIt, RFC 8493). Check that nothing was changed or left out with any BagIt tool:
       python -m bagit --validate <this unzipped directory>
   dossier.json lists every record, every file's SHA-256, and per record its evidence record
   ("evidence") and any renewed copy ("renewal").

2. Each record's folder (named by its encounter id):
   discharge-summary.pdf   the discharge summary exactly as the hospital signed and archived it
                           (PDF/A-3b, PAdES B-LTA); its SHA-256 is the archive catalog's
   evidence-record.ers     its RFC 4998 evidence record: a hash tree over a night's documents
                           with an RFC 3161 timestamp (renewed over the years), proving that this
                           exact PDF existed at the time dossier.json gives ("first_timestamp")
   fhir-bundle.json        the structured data embedded in (and signed with) the PDF
   verification.json       every check the archive ran on the record at export time, the
                           evidence record's verdict included ("evidence")
   If dossier.json says an evidence record is "pending", the night it was archived the
   timestamping service could not be reached; a later night completes it. Ask for the dossier
   again then. "missing" or "unreadable" is a finding to report to the hospital.

3. Checking a record without the archive's software:
   - the signature: open discharge-summary.pdf in any PAdES-capable viewer, or validate it with
     the EU DSS demonstration (https://ec.europa.eu/digital-building-blocks/DSS/webapp-demo/),
     trusting the hospital's CA;
   - the evidence record: EU DSS validates the pair: give it discharge-summary.pdf as the signed
     document and evidence-record.ers as its detached evidence record; Bouncy Castle
     (org.bouncycastle.tsp.ers) and any RFC 4998 validator can check it too. The evidence record
     covers discharge-summary.pdf only: a changed byte in either file makes it fail;
   - with the archive's command-line tool, anywhere, without access to the archive:
       emr-archive verify-file discharge-summary.pdf --evidence evidence-record.ers

4. Renewed copies.
{renewal}"""

_RENEWED = """\
   discharge-summary.renewed.pdf is discharge-summary.pdf with one more document timestamp
   appended at export time (an incremental update: its first bytes are the original's, byte for
   byte), so that it validates alone in any PDF viewer after the TSA certificate of the
   original's timestamps has expired. dossier.json ("renewal") says when, by which timestamping
   service, and the original's SHA-256. The archived document itself was not changed; the
   evidence record proves the original, not the renewed copy.
"""
