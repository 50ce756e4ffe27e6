"""Where the repository is, for tests that start child processes or read shipped files."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
