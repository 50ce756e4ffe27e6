"""The ``emr-archive`` console script's entry point, light on purpose.

The batch runs start their process pools with ``spawn`` (``archive.core.pool``), and a spawned
child first re-imports the parent's main script as ``__mp_main__``. The script pip writes runs
``from <module> import main`` at module level, so pointing it at ``infra.cli`` made every pool
worker import the whole command line (Prefect, every stage, the portal): ~161 MB per worker
instead of ~16 MB before its own work, measured on the QĐ 130 collection pool. Importing this
module imports nothing; the command line is loaded only when the script is run.
"""

from __future__ import annotations


def main() -> None:
    from infra.cli import main as cli_main

    cli_main()
