"""Prefect as users run it: a real server, the `mixopt` process pool, `prefect deploy --all`, a worker.

One server per backend (SQLite, then PostgreSQL where one answers on 127.0.0.1:5432, in a fresh
database dropped afterwards) is shared by this module's tests. The `mixture-search` deployment is run
twice through the API with the same tiny config, as the UI's Run button does; the second run must
train nothing. The warehouse is then read read-only, the artifacts and task runs through the client,
and the flow run's page is opened in headless Chromium.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config
from tests.integration import prefect_server as ps

pytestmark = pytest.mark.integration

DEPLOYMENTS = {"mixture-search", "prepare-corpus", "extend-swarm", "fit-and-propose", "final-run", "nightly"}
RUN_TIMEOUT_S = 900
N_PROXIES = 4


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """A server on a free port with the pool, every deployment and a worker; stopped afterwards."""
    db_name = db_url = None
    if request.param == "postgresql":
        if not ps.postgres_answers():
            pytest.skip("no PostgreSQL answers on 127.0.0.1:5432: the PostgreSQL backend is not tested")
        db_name, db_url = ps.create_database()
    server = None
    try:
        server = ps.start_server(tmp_path_factory.mktemp(f"prefect-{request.param}"), db_url=db_url)
        server.create_pool()
        server.deploy_all()
        server.start_worker()
        yield server
    finally:
        if server is not None:
            server.stop()
        if db_name:
            ps.drop_database(db_name)


def _api(server):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: server.api_url})


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _proxy_task_runs(server) -> int:
    """How many `train-proxy` task runs (attempts are counted once: retries reuse the task run)."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with _api(server), _client() as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="proxy-")), limit=200)
    return len(runs)


def _run_search(server, params: dict):
    from prefect.deployments import run_deployment

    with _api(server):
        run = run_deployment("mixture-search/mixture-search", parameters=params, timeout=RUN_TIMEOUT_S,
                             poll_interval=1)
    if not run.state.is_completed():
        logs = ps.flow_run_logs(server.api_url, run.id)
        pytest.fail(f"flow run {run.name} ended {run.state.type}: {run.state.message}\n{logs}\n{server.describe()}")
    return run


def _count(path, sql):
    return read_only_query(path, sql)[1]


@pytest.fixture(scope="module")
def searched(served, tmp_path_factory):
    """Two runs of the mixture-search deployment with the same config, and what each left behind."""
    tmp = tmp_path_factory.mktemp("experiment")
    # four proxies (the fewest a fit takes); the final comparison (three more trainings) on SQLite only
    cfg = tiny_config(tmp, swarm={"n_proxies": N_PROXIES}, final={"enabled": served.db_url is None})
    params = {"config": cfg.model_dump(mode="json")}
    first = _run_search(served, params)
    wh = cfg.runtime.warehouse
    after_first = (_count(wh, "select count(*) from proxy_runs")[0][0], _proxy_task_runs(served))
    second = _run_search(served, params)
    after_second = (_count(wh, "select count(*) from proxy_runs")[0][0], _proxy_task_runs(served))
    return {"cfg": cfg, "first": first, "second": second, "after_first": after_first, "after_second": after_second}


def test_deploy_all_registers_every_deployment_with_a_form(served):
    with _api(served), _client() as client:
        deployments = {d.name: d for d in client.read_deployments()}
    assert DEPLOYMENTS <= set(deployments)
    for name in DEPLOYMENTS:
        d = deployments[name]
        assert d.work_pool_name == "mixopt" and d.enforce_parameter_schema
        schema = d.parameter_openapi_schema
        assert schema["properties"]["config"]["$ref"] == "#/definitions/ExperimentConfig"
        assert "SwarmConfig" in schema["definitions"] and "RuntimeConfig" in schema["definitions"]
    runtime = deployments["mixture-search"].parameter_openapi_schema["definitions"]["RuntimeConfig"]
    assert "dask_address" in runtime["properties"]  # settable from the form
    nightly = deployments["nightly"]
    assert nightly.parameter_openapi_schema["properties"]["add_proxies"]["minimum"] == 1
    (schedule,) = nightly.schedules
    assert schedule.schedule.cron == "0 2 * * *" and schedule.active is False


def test_a_run_from_the_deployment_fills_the_warehouse(served, searched):
    cfg, first = searched["cfg"], searched["first"]
    wh = cfg.runtime.warehouse
    assert _count(wh, "select status, count(*) from proxy_runs group by status") == [("ok", N_PROXIES)]
    (n_fits,), = _count(wh, "select count(*) from fits where chosen")
    assert n_fits == 1
    assert _count(wh, "select count(*) from proposals")[0][0] >= 1
    finals = [r[0] for r in _count(wh, "select label from final_runs where status = 'ok' order by label")]
    if not cfg.final.enabled:
        assert finals == []
    else:  # a proposal equal to a baseline (the hedge found nothing better) shares that baseline's runs
        assert finals in (["natural", "proposed", "stratified"], ["proposed", "stratified"], ["natural", "proposed"])
    assert first.deployment_id is not None
    if served.db_url:  # the server kept its state in PostgreSQL: both searches and their swarm subflows
        assert ps.count_rows(served.db_url, "flow_run") >= 4


def test_the_artifacts_are_in_the_ui(served, searched):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    first = searched["first"]
    with _api(served), _client() as client:
        mine = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[first.id])))
        progress = [a for a in client.read_artifacts() if a.type == "progress"]
    by_key = {a.key: a for a in mine if a.key}
    expected = {"top-mixtures", "mixopt-fit", "mixopt-proposal", "mixopt-report"}
    if searched["cfg"].final.enabled:
        expected.add("final-comparison")
    assert expected <= set(by_key), sorted(by_key)
    assert "predicted_cv" in str(by_key["top-mixtures"].data) and "measured" in str(by_key["top-mixtures"].data)
    assert "Spearman" in by_key["mixopt-fit"].data and "Chosen" in by_key["mixopt-fit"].data
    assert "proposed" in str(by_key["mixopt-proposal"].data)
    assert progress and max(float(a.data) for a in progress) == 100.0  # the swarm subflow's progress


def test_a_second_run_reuses_every_finished_proxy(searched):
    assert searched["second"].state.is_completed()
    assert searched["after_first"] == (N_PROXIES, N_PROXIES)  # proxies in the warehouse, train-proxy task runs
    assert searched["after_second"] == searched["after_first"]  # nothing was trained again


def test_the_flow_run_page_shows_name_and_state(served, searched, tmp_path):
    if ps.chromium_binary() is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the UI page is not checked")
    if served.db_url:
        pytest.skip("the UI page is checked once, on the SQLite server (the same UI serves both)")
    run = searched["first"]
    url = f"{served.url}/runs/flow-run/{run.id}"
    shot = tmp_path / "run.png"
    dom = ps.chromium(url, tmp_path, "--dump-dom", f"--screenshot={shot}", "--window-size=1400,900",
                      budget_ms=30_000)
    text = re.sub(r"<[^>]+>", " ", dom)
    assert run.name in text, dom[-2000:]
    assert re.search(r"\bCompleted\b", text), dom[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    assert Path(shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
