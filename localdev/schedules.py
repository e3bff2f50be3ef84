"""Run an app's scheduled functions in the local server, as EventBridge runs them on AWS.

`chalice local` serves only HTTP routes, so without this the sweep of expired streams would
never run locally. Each function with a `Rate` schedule runs once per period in a daemon
thread, the first time one period after the server starts. A failed run is logged, and the
next one runs on time.
"""

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.app import Chalice, Rate, ScheduledEventConfig

logger = logging.getLogger(__name__)

SECONDS_PER_UNIT = {Rate.MINUTES: 60, Rate.HOURS: 3600, Rate.DAYS: 86400}


@dataclass(frozen=True)
class ScheduledFunction:
    """A scheduled function of the app and its period in seconds."""

    name: str
    period: float
    run: Callable[[], Any]


def scheduled_functions(app: Chalice) -> list[ScheduledFunction]:
    """Return the app's functions scheduled at a fixed `Rate`; cron schedules are left out."""
    functions = []
    for source in app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            continue
        expression = source.schedule_expression
        if not isinstance(expression, Rate):
            logger.warning("schedule %s is not a Rate and does not run locally", source.name)
            continue
        module_name, attribute = source.handler_string.rsplit(".", 1)
        handler = getattr(sys.modules[module_name], attribute)
        # The decorated object wraps the function; the function ignores its event.
        function = getattr(handler, "func", handler)
        period = expression.value * SECONDS_PER_UNIT[expression.unit]
        functions.append(ScheduledFunction(source.name, period, lambda f=function: f(None)))
    return functions


def start_schedules(app: Chalice, stopped: threading.Event) -> list[threading.Thread]:
    """Run each scheduled function of `app` once per period until `stopped` is set."""
    threads = []
    for function in scheduled_functions(app):
        thread = threading.Thread(
            target=_run_every_period,
            args=(function, stopped),
            name=f"schedule-{function.name}",
            daemon=True,
        )
        thread.start()
        logger.info("running %s every %g s", function.name, function.period)
        threads.append(thread)
    return threads


def _run_every_period(function: ScheduledFunction, stopped: threading.Event) -> None:
    while not stopped.wait(function.period):
        try:
            function.run()
        except Exception:
            logger.exception("scheduled function %s failed", function.name)
