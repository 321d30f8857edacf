"""Run one training (or one batch of proxies) in its own process.

`python -m mixopt.models.launch SPEC_JSON RESULT_JSON` trains the `RunSpec` in SPEC_JSON and writes
its `RunResult` to RESULT_JSON atomically; a JSON list of specs trains as one batch (`train_batch`)
and writes a list of results. `run_in_subprocess` / `run_batch_in_subprocess` do that from a parent
process and turn a child that died without a result (killed, crashed, timed out) into "failed"
RunResults. Final runs start this way (so they can use several devices with DDP), and so do the
swarm's batches on a CPU when several train at once (one single-threaded process per core).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mixopt.runspec import RunResult, RunSpec, atomic_write_text

STDERR_TAIL_LINES = 20


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    """The last `lines` lines of a text file ("" if it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_in_subprocess(spec: RunSpec, work_dir: str | Path, timeout_s: float | None = None) -> RunResult:
    """Train `spec` in a fresh Python process (same interpreter) and return its result.

    Writes `<work_dir>/<run_id>.spec.json`, the child writes `<run_id>.result.json`, and the child's
    stderr goes to `<run_id>.stderr.log` (stdout, e.g. a progress bar, is inherited). Never raises
    for a failure of the child.
    """
    return _launch([spec], Path(work_dir), spec.run_id, spec.to_json(), timeout_s)[0]


def run_batch_in_subprocess(specs: list[RunSpec], work_dir: str | Path,
                            timeout_s: float | None = None) -> list[RunResult]:
    """Train `specs` as one batch (`train_batch`) in a fresh Python process; results in spec order.

    Files are named after the first spec's run id (`<id>.batch.spec.json`, ...). Never raises for a
    failure of the child: every spec then gets a "failed" result with the reason and stderr tail.
    """
    payload = json.dumps([json.loads(s.to_json()) for s in specs])
    return _launch(specs, Path(work_dir), f"{specs[0].run_id}.batch", payload, timeout_s)


def _launch(specs: list[RunSpec], work: Path, name: str, payload: str, timeout_s: float | None) -> list[RunResult]:
    """Run `python -m mixopt.models.launch` on `payload` (one spec, or a JSON list of specs) and read
    back one result per spec; a child that died without them fails every spec with the reason."""
    work.mkdir(parents=True, exist_ok=True)
    spec_path, result_path, err_path = (work / f"{name}.{x}" for x in ("spec.json", "result.json", "stderr.log"))
    atomic_write_text(spec_path, payload)
    result_path.unlink(missing_ok=True)  # a stale result must not pass for this run's
    code, why = None, ""
    try:
        with open(err_path, "w", encoding="utf-8") as err:
            cmd = [sys.executable, "-m", "mixopt.models.launch", str(spec_path), str(result_path)]
            code = subprocess.run(cmd, stdin=subprocess.DEVNULL, stderr=err, timeout=timeout_s, check=False).returncode
    except subprocess.TimeoutExpired:
        why = f"timed out after {timeout_s} s (killed)"
    except OSError as exc:
        why = f"could not start the training process: {exc}"
    if result_path.exists():
        try:
            blob = json.loads(result_path.read_text(encoding="utf-8"))
            results = [RunResult.from_json(json.dumps(r)) for r in (blob if isinstance(blob, list) else [blob])]
            if [r.run_id for r in results] == [s.run_id for s in specs]:
                return results
            why = f"result file {result_path} does not match the run ids {[s.run_id for s in specs]}"
        except (ValueError, TypeError) as exc:
            why = f"unreadable result file {result_path}: {exc}"
    if not why:
        why = f"training process exited with code {code} without writing a result"
        if code is not None and code < 0:
            why += f" (killed by signal {-code})"
    tail = _tail(err_path)
    error = f"{why}; stderr tail:\n{tail}" if tail else f"{why}; no stderr output"
    return [RunResult(run_id=s.run_id, status="failed", error=error) for s in specs]


def main(argv: list[str] | None = None) -> int:
    """Entry point: `SPEC_JSON RESULT_JSON`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m mixopt.models.launch SPEC_JSON RESULT_JSON", file=sys.stderr)
        return 2
    blob = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    if isinstance(blob, list):  # a batch of proxies
        specs = [RunSpec.from_json(json.dumps(b)) for b in blob]
        from mixopt.models.swarm_trainer import train_batch

        results = train_batch(specs)
        atomic_write_text(args[1], json.dumps([json.loads(r.to_json()) for r in results]))
        return 0
    spec = RunSpec.from_json(json.dumps(blob))
    from mixopt.models.train import train_run  # heavy imports only once the arguments are good

    result = train_run(spec)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # DDP: Lightning's extra ranks re-run this command
        atomic_write_text(args[1], result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
