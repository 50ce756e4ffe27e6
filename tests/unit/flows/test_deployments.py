"""prefect.yaml and `emr-archive serve` declare the same deployments."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.utilities.callables import parameter_schema

from flows.deployments import NIGHTLY_CRON, deployments
from flows.evidence import evidence_rehash
from flows.nightly import nightly_archive
from infra.settings import load_app_settings as load_settings
from tests.support.paths import REPO

ROOT = REPO


def test_prefect_yaml_matches_the_served_deployments() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    declared = {d["name"]: d for d in spec["deployments"]}
    served = {d.name: d for d in deployments(load_settings())}
    assert set(declared) == set(served)
    nightly = declared["nightly"]
    module, function = nightly["entrypoint"].split(":")
    assert (ROOT / module).is_file()
    assert function == nightly_archive.fn.__name__
    schedule = nightly["schedules"][0]
    assert (schedule["cron"], schedule["timezone"]) == (NIGHTLY_CRON, "Asia/Ho_Chi_Minh")
    served_schedule = served["nightly"].schedules[0].schedule
    assert served_schedule.cron == NIGHTLY_CRON
    assert served_schedule.timezone == "Asia/Ho_Chi_Minh"


def test_one_nightly_deployment_per_configured_facility(tmp_path: Path) -> None:
    settings = load_settings()
    facilities = {"79002": tmp_path / "b", "79001": tmp_path / "a"}
    archive = settings.archive.model_copy(update={"facilities": facilities})
    served = {d.name: d for d in deployments(settings.model_copy(update={"archive": archive}))}
    assert "nightly" not in served
    for code, source in facilities.items():
        nightly = served[f"nightly-{code}"]
        assert nightly.parameters == {"source": str(source), "facility": code}
        assert nightly.schedules[0].schedule.cron == NIGHTLY_CRON


def test_hash_tree_renewal_is_deployed_unscheduled_and_asks_for_its_algorithm() -> None:
    """A deliberate, rare act (the monthly renewal fails `evidence.hash_renewal_due` rather than
    do it): an operator triggers it, naming the algorithm; nothing runs it on a timer."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    declared = {d["name"]: d for d in spec["deployments"]}["evidence-rehash"]
    assert declared["entrypoint"] == "flows/evidence.py:evidence_rehash"
    assert not declared.get("schedules")
    assert "algorithm" not in declared["parameters"]
    served = {d.name: d for d in deployments(load_settings())}["evidence-rehash"]
    assert served.schedules in (None, [])
    assert "algorithm" not in served.parameters
    # Prefect refuses a run without it (the schema is enforced), rather than guess one.
    assert served.enforce_parameter_schema
    assert "algorithm" in parameter_schema(evidence_rehash).required
