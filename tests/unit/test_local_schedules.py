"""The local server's runner of scheduled functions."""

import threading

from app import app
from localdev.schedules import ScheduledFunction, _run_every_period, scheduled_functions


def test_app_sweep_runs_every_minute() -> None:
    functions = scheduled_functions(app)

    assert [(f.name, f.period) for f in functions] == [("sweep_expired_streams", 60)]


def test_failed_run_does_not_stop_the_next() -> None:
    stopped = threading.Event()
    runs: list[int] = []

    def run() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("store unavailable")
        if len(runs) == 3:
            stopped.set()

    _run_every_period(ScheduledFunction("sweep", 0.01, run), stopped)

    assert runs == [0, 1, 2]
