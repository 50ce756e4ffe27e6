"""``python -m infra.cli``: the same program as the ``emr-archive`` script."""

from infra.cli import main

if __name__ == "__main__":
    main()
