"""The synthetic sample: a realistic FHIR Bulk Data export of a fictitious Vietnamese hospital.

Takes a seed, a day and a number of encounters; writes an export directory the collector reads
(NDJSON files and ``manifest.json``), byte-identical for the same arguments, with bad records
planted on purpose, and returns the :class:`SampleSummary` a correct collector must reproduce.
Used by the demo, the ``sample`` command, the tests and the benchmarks; never by the write path.
"""

from infra.sample.export import MANIFEST_NAME
from infra.sample.generator import write_sample_export
from infra.sample.summary import EXPECTED_REASON, BadKind, Planted, SampleSummary

__all__ = [
    "EXPECTED_REASON",
    "MANIFEST_NAME",
    "BadKind",
    "Planted",
    "SampleSummary",
    "write_sample_export",
]
