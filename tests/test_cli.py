"""The command line's habits: `python -m mixopt`, and one base class for the errors it prints."""

import subprocess
import sys

from typer.testing import CliRunner

from mixopt.cli import app


def test_python_dash_m_mixopt_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "mixopt", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert "run" in out.stdout and "sql" in out.stdout and "report" in out.stdout


def test_user_facing_errors_share_one_base_class():
    from mixopt.config import ConfigError
    from mixopt.errors import MixoptError
    from mixopt.tasks.fit import NotEnoughProxies
    from mixopt.warehouse import WarehouseError

    for cls in (ConfigError, WarehouseError, NotEnoughProxies):
        assert issubclass(cls, MixoptError)
    assert issubclass(ConfigError, ValueError) and issubclass(WarehouseError, RuntimeError)


def test_a_mixopt_error_is_one_line_and_exit_code_2(tmp_path):
    result = CliRunner().invoke(app, ["sql", "select 1", "--warehouse", str(tmp_path / "nope.duckdb")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "no warehouse here" in lines[0]


def test_report_open_writes_one_self_contained_page_and_never_fails_headless(tmp_path, monkeypatch):
    from tests.report.test_viz import fill_warehouse

    fill_warehouse(tmp_path / "w.duckdb").close()
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["report", "--warehouse", str(tmp_path / "w.duckdb"), "--out", str(out), "--open"])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert page.count("<img") == len(list(out.glob("*.png"))) >= 3 and 'src="data:image/png;base64,' in page
    assert "no browser here" in result.output and not opened  # headless: the path, no browser
    monkeypatch.setenv("DISPLAY", ":0")
    result = CliRunner().invoke(app, ["report", "--warehouse", str(tmp_path / "w.duckdb"), "--out", str(out), "--open"])
    assert result.exit_code == 0 and opened == [(out / "report.html").resolve().as_uri()]
