"""``emr-archive catalog verify | rebuild``: the Parquet catalog against its locked bucket copies.

The bucket is the source of truth; the local catalog is a cache that can be checked against it
and rebuilt from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from archive import wiring
from infra.cli._command import Group
from infra.cli._ctx import settings_of


@click.group(name="catalog", cls=Group)
def catalog_group() -> None:
    """The Parquet catalog of archived records."""


@catalog_group.command("verify")
@click.pass_context
def catalog_verify(ctx: click.Context) -> None:
    """Check the manifest hash chain and compare it with the locked bucket copies."""
    from archive.catalog import manifest_lock

    settings = settings_of(ctx)
    catalog = wiring.open_catalog(settings, create=True)
    store = wiring.open_meta_store(settings)
    until = manifest_lock(settings, datetime.now(UTC))
    uploaded = catalog.sync(store, retain_until=until, whole=True)  # every copy, not the newest
    rows = catalog.rows().num_rows
    click.echo(
        f"catalog intact: {len(catalog.manifests)} manifests, {rows} records, "
        f"head {catalog.latest_manifest_sha256[:16]}...; bucket copies match"
        + (f" ({len(uploaded)} re-uploaded)" if uploaded else "")
    )


@catalog_group.command("rebuild")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def catalog_rebuild(ctx: click.Context, directory: Path) -> None:
    """Rebuild a catalog into DIRECTORY from the bucket's locked manifest copies."""
    from archive.catalog import Catalog

    store = wiring.open_meta_store(settings_of(ctx), read_only=True)
    catalog = Catalog.rebuild(directory, store)
    click.echo(
        f"rebuilt {len(catalog.manifests)} manifests, {catalog.rows().num_rows} records "
        f"into {directory}"
    )
