"""The primary site lost entirely and repaired from the replica, on real SeaweedFS.

A module-wide pair of sites of its own (the session's primary cannot be wiped: every other test
uses it), sharing the session's PKI, TSA and keyring: archive, wipe the primary's data directory,
repair it from the replica with no key on the machine, and every reader finds the records under
the catalog's version ids through the re-homed map: full verification passes, an export works,
the catalog rebuilds from the repaired bucket, a retention change reaches both copies, a second
repair is a no-op.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive import wiring
from archive.audit import AuditLog
from archive.catalog import Catalog, table_to_rows
from archive.core.errors import ObjectNotFoundError, RehomedError
from archive.core.sections import StackSettings
from archive.store import (
    REHOMED_PREFIX,
    S3ObjectStore,
    SealedStore,
    Site,
    sha256_hex,
)
from archive.store.rehomed import (
    GENESIS,
    Rehoming,
    append_map,
    encode_segment,
    read_map,
    segment_key,
)
from infra import seaweed
from infra.ports import free_port_block
from infra.repair import audit_repair, repair_site
from infra.settings import AppSettings as Settings
from retrieval import Retrieval, Role, validate_zip
from retrieval.errors import DossierError
from tests.support.nightly import Export, make_export
from tests.support.sites import (
    archive_holding_one,
    not_passed,
    repair_without_keys,
    two_site_settings,
    verify_full,
)
from verification.results import Status

pytestmark = pytest.mark.integration

ENCOUNTERS = 16
SHARED = ("pki", "keys")  # the session's dev PKI and keyring; everything else is this module's
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def sites(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Two SeaweedFS of this module's own (ports, data directories), the session's PKI/keys."""
    base = tmp_path_factory.mktemp("primary-loss")
    data = base / "data"
    data.mkdir(mode=0o700)
    for name in SHARED:
        (data / name).symlink_to(stack_settings.data_dir / name)
    s3, master, volume, filer, admin, *_ = free_port_block(10)
    stack = StackSettings(
        **(
            stack_settings.stack.model_dump()
            | {
                "s3_port": s3,
                "master_port": master,
                "volume_port": volume,
                "filer_port": filer,
                "admin_port": admin,
                "replica_port_offset": 5,
            }
        )
    )
    settings = two_site_settings(
        stack_settings,
        bucket="primary-loss",
        catalog_dir=base / "catalog",
        data_dir=data,
        stack=stack,
    )
    both: tuple[Site, Site] = ("primary", "replica")
    with ThreadPoolExecutor(2) as pool:  # each site takes seconds to start and to stop
        try:
            for store in pool.map(lambda site: seaweed.start(settings, site=site), both):
                store.create_locked_bucket()
            yield settings
        finally:
            list(pool.map(lambda site: seaweed.stop(settings, site), both))


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(
        tmp_path_factory.mktemp("primary-loss-export"), encounters=ENCOUNTERS, seed=23
    )


def test_the_primary_lost_entirely_is_repaired_from_the_replica(
    sites: Settings, export: Export, tmp_path: Path
) -> None:
    rows, held, holds = archive_holding_one(sites, export)

    # The primary loses everything: stopped, data directory deleted, started empty.
    assert seaweed.stop(sites)
    shutil.rmtree(sites.seaweedfs_dir)
    seaweed.start(sites).create_locked_bucket()
    bare = S3ObjectStore.from_settings(sites)
    with pytest.raises(ObjectNotFoundError):
        wiring.open_store(sites, read_only=True).get(held.object_key, version_id=held.version_id)

    report = repair_without_keys(sites, "primary")  # no key anywhere: sealed bytes copied
    assert report.rehomed == len(rows)
    assert report.rehomed_segments == 1
    kinds = {"/".join(k.split("/")[:3]) for k in report.copied}
    assert {"evidence/v1/records", "catalog/sealed/v1", "audit/sealed/v1"} <= kinds, kinds
    secs, objects = report.seconds, len(report.copied)
    print(  # the repair rate, for the README's loss-of-primary timings (run with -s)
        f"\nprimary repair: {objects} objects ({len(rows)} records) in {secs:.2f} s: "
        f"{len(rows) / secs:.1f} records/s, {objects / secs:.1f} objects/s"
    )
    audit_repair(sites, report, site="primary")
    (event,) = AuditLog.for_settings(sites, bare).show(action="store.repair")
    assert event.detail["rehomed"] == len(rows)
    assert ("site", "primary") in event.entities
    restored = bare.latest(held.object_key)
    assert restored is not None
    assert restored.version_id != held.version_id  # S3 gave it a new id; the map names it
    assert restored.lock.legal_hold
    assert restored.lock.retain_until is not None
    assert restored.lock.retain_until >= held.retain_until
    assert [v.key for v in bare.list_versions(REHOMED_PREFIX)] == [f"{REHOMED_PREFIX}00000001.json"]

    # Every reader resolves through the map: full verification (fixity, signatures, evidence,
    # locks, holds, inventory, both sites) ...
    repaired = verify_full(sites, tmp_path / "repaired", holds)
    assert not_passed(repaired) == {}
    assert len(repaired.results) == len(rows)

    # ... an export (the record unsealed and checked against the catalog, its evidence record) ...
    r = Retrieval.open(sites)
    now = datetime.now(UTC)
    r.add_user(None, "admin.minh", Role.ADMIN, PASSWORD, now=now)
    admin = r.sign_in("admin.minh", PASSWORD, now=now)
    r.add_user(admin, "ro.binh", Role.RECORDS_OFFICER, PASSWORD, now=now)
    officer = r.sign_in("ro.binh", PASSWORD, now=now)
    out = r.export(officer, out_dir=tmp_path / "export", now=now, encounter_id=held.encounter_id)
    r.index.close()
    validate_zip(out.path)
    with zipfile.ZipFile(out.path) as z:
        wanted = f"data/{held.encounter_id}/discharge-summary.pdf"
        (name,) = [n for n in z.namelist() if n.endswith(wanted)]
        pdf = z.read(name)
    assert hashlib.sha256(pdf).hexdigest() == held.pdf_sha256

    # ... the catalog rebuilt from the repaired bucket names the same versions ...
    rebuilt = Catalog.rebuild(tmp_path / "rebuilt", wiring.open_meta_store(sites, read_only=True))
    assert table_to_rows(rebuilt.rows()) == rows
    replica = S3ObjectStore.from_settings(sites, site="replica")  # as from the replica's alone
    sealed = SealedStore.for_settings(sites, replica, keys=wiring.open_keyring(sites))
    assert table_to_rows(Catalog.rebuild(tmp_path / "from-replica", sealed).rows()) == rows

    # ... a retention change to a catalogued version reaches the restored copy at both sites.
    later = held.retain_until + timedelta(days=365)
    both = wiring.open_store(sites)
    both.extend_retention(held.object_key, version_id=held.version_id, retain_until=later)
    for site in ("primary", "replica"):
        copy = S3ObjectStore.from_settings(sites, site=site).latest(held.object_key)
        assert copy is not None
        assert copy.lock.retain_until == later

    # A second repair of the primary, which now holds everything: nothing copied, no new entry.
    again = repair_site(sites, site="primary")
    assert (again.copied, again.rehomed, again.refused) == ((), 0, ())

    # Attacks on the real store (last: they leave the map refused). Someone with the admin
    # credentials puts other bytes under the held record's key and chains a well-formed, locked
    # entry to them: the catalog's SHA-256 is not theirs, nothing is served.
    forged = b"other bytes"
    put = bare.client.put_object(
        Bucket=bare.bucket, Key=held.object_key, Body=forged, ChecksumSHA256=_b64sha(forged)
    )
    entry = Rehoming(held.object_key, held.version_id, put["VersionId"], sha256_hex(forged))
    append_map(bare, read_map(bare), [(entry, later)], now=datetime.now(UTC))
    with pytest.raises(RehomedError, match="not the catalog's"):
        wiring.open_store(sites, read_only=True).get(held.object_key, version_id=held.version_id)
    # A segment that does not chain on the one before: the whole map is refused.
    good = read_map(bare).entries[(held.object_key, held.version_id)]
    loose = encode_segment(3, GENESIS, [good], written=datetime.now(UTC))
    bare.put_locked(segment_key(3), loose, retain_until=later)
    with pytest.raises(RehomedError, match="does not chain"):
        wiring.open_store(sites, read_only=True).head(
            rows[1].object_key, version_id=rows[1].version_id
        )
    # Verification reports it and goes on: every record here was restored, so each fails
    # object.rehomed_broken, the run fails rehomed.broken; the catalog and audit chains, read
    # without the map, still pass. An export refuses the record with the map's reason.
    broken = verify_full(sites, tmp_path / "broken", holds)
    found = not_passed(broken)
    assert broken.status is Status.FAILED
    assert (found["rehomed"], found["inventory"]) == ("rehomed.broken", "rehomed.broken")
    assert not {"catalog.chain", "audit-log.chain"} & set(found)
    assert {c.reason_code for r in broken.results for c in r.checks if c.check == "object"} == {
        "object.rehomed_broken"
    }
    r = Retrieval.open(sites)
    try:
        with pytest.raises(DossierError, match=r"could not be read or opened \(RehomedError\)"):
            r.export(officer, out_dir=tmp_path / "refused", now=now, encounter_id=held.encounter_id)
    finally:
        r.index.close()


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
