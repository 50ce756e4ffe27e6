"""What a cluster worker says when its key-encryption keys do not open: which provider it is
configured with and what that provider needs on this machine (README, Scaling out). Shared by
the archive, verification and hash-tree renewal workers."""

from __future__ import annotations

from archive.core.errors import ArchiveError, WorkerKeysError
from archive.core.settings import Settings


def keys_unavailable(settings: Settings, error: Exception) -> WorkerKeysError:
    """The error of a worker whose key-encryption keys did not open: which provider it is
    configured with and what that provider needs on this machine. Our own and OS errors are
    quoted (paths, reason codes: never a record's data); anything else by its type alone."""
    keys = settings.keys
    if keys.provider == "transit":
        token = keys.transit_token_file or "the transit token file"
        where = (
            f"the transit key {keys.transit_mount}/{keys.transit_key} at "
            f"{keys.transit_url or '(no keys.transit_url)'}: give this machine network access "
            f"to it and {token} (0600)"
        )
    elif keys.provider == "pkcs11":
        token = keys.pkcs11_token_label or keys.pkcs11_token_serial or "(no token set)"
        pin = keys.pkcs11_pin_file or (keys.pkcs11_pin_env and f"${keys.pkcs11_pin_env}")
        where = (
            f"the PKCS#11 token {token} through {keys.pkcs11_module}: give this machine the "
            f"token (or the HSM's client) and its PIN ({pin or 'no PIN source set'})"
        )
    else:
        where = (
            f"the local keyring in {settings.keyring_dir}: copy that directory (0700, files "
            "0600) to this machine at the same path, or use a transit or PKCS#11 provider"
        )
    detail = str(error) if isinstance(error, ArchiveError | OSError) else "no detail"
    return WorkerKeysError(
        f"this worker cannot open its key-encryption keys (keys.provider = {keys.provider}; "
        f"{type(error).__name__}: {detail}) from {where}"
    )
