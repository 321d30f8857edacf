"""A sample of proxies measures held-out curves (`swarm.curve_proxies`), without changing any run id."""

from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard
from mixopt.tasks.swarm import swarm_specs
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config

DOMAINS = [DomainShard(n, f"/x/{n}.train", f"/x/{n}.val", 100_000, 1000) for n in ("synth_a", "synth_b", "synth_c")]


def _specs(tmp_path, n):
    cfg = tiny_config(tmp_path, swarm={"curve_proxies": n})
    exp = Experiment.create(cfg, DOMAINS, 300, "fp")
    with Warehouse(tmp_path / f"w{n}.duckdb") as wh:
        return swarm_specs(exp, wh)


def test_the_first_design_proxies_ask_for_a_curve(tmp_path):
    none, some = _specs(tmp_path, 0), _specs(tmp_path, 2)
    assert [s.run_id for s in none] == [s.run_id for s in some]
    assert not any(s.curve_points for s in none)
    asked = [s for s in some if s.curve_points]
    assert len(asked) == 2 and all(s.label == "design" and s.curve_points == 12 for s in asked)
