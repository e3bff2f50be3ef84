"""Run the benchmark scenarios against a base URL, or against a stack this command starts.

    python -m bench                              # own DynamoDB Local + 2 API servers
    python -m bench --base-url http://127.0.0.1:8000 --server-log server.log

Writes the figures as JSON and as a Markdown table, and exits with status 1 when any
scenario received a message twice or never received one it created.
"""

import argparse
import asyncio
import json
import logging
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench import costs, report
from bench.scenarios import Sizes, drain, latency, percentile, scale, warm_up
from bench.stack import BenchStack

logger = logging.getLogger("bench")

SCENARIOS = ("drain", "latency", "latency-cross", "scale")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Sizes()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    target = parser.add_argument_group("target")
    target.add_argument("--base-url", help="API to load; without it a private stack is started")
    target.add_argument(
        "--producer-url",
        help="API instance that creates messages in the cross-process scenarios "
        "(default: the second server of the private stack, or --base-url)",
    )
    target.add_argument(
        "--server-log",
        action="append",
        type=Path,
        default=[],
        help="server log holding the per-request metric lines (repeatable); costs are "
        "reported only when the logs are known",
    )
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument(
        "--messages",
        type=int,
        default=defaults.drain_messages,
        help="messages preloaded for the drain scenario",
    )
    sizes.add_argument(
        "--warm-up-messages",
        type=int,
        default=defaults.warm_up_messages,
        help="messages created and drained before the scenarios, which are not measured",
    )
    sizes.add_argument(
        "--collectors", type=int, default=defaults.collectors, help="multipart streams per ISPB"
    )
    sizes.add_argument(
        "--rate",
        type=float,
        default=defaults.latency_rate,
        help="messages created per second in the latency scenarios",
    )
    sizes.add_argument(
        "--latency-seconds",
        type=float,
        default=defaults.latency_seconds,
        help="seconds of steady creation in the latency scenarios",
    )
    sizes.add_argument(
        "--ispbs",
        type=int,
        default=defaults.scale_ispbs,
        help="ISPBs in the scale scenario, each with --collectors streams",
    )
    sizes.add_argument(
        "--idle-seconds",
        type=float,
        default=defaults.scale_idle_seconds,
        help="seconds the scale scenario's streams wait with nothing pending",
    )
    sizes.add_argument(
        "--scale-rate",
        type=float,
        default=defaults.scale_rate,
        help="messages created per second while the scale streams wait",
    )
    sizes.add_argument(
        "--scale-seconds",
        type=float,
        default=defaults.scale_seconds,
        help="seconds of creation in the scale scenario",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra PIX_* setting for the private stack's servers (repeatable)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, help="write the figures as JSON here")
    output.add_argument("--markdown", type=Path, help="write the Markdown table here")
    output.add_argument(
        "--docs", type=Path, help="write the benchmark page here, with its plots beside it"
    )
    output.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".run/bench"),
        help="where the private stack keeps its logs",
    )
    args = parser.parse_args(argv)
    args.sizes = Sizes(
        drain_messages=args.messages,
        warm_up_messages=args.warm_up_messages,
        collectors=args.collectors,
        latency_rate=args.rate,
        latency_seconds=args.latency_seconds,
        scale_ispbs=args.ispbs,
        scale_idle_seconds=args.idle_seconds,
        scale_rate=args.scale_rate,
        scale_seconds=args.scale_seconds,
    )
    args.scenario_names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(args.scenario_names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    return args


async def run_scenarios(
    names: list[str], collector_url: str, producer_url: str, sizes: Sizes
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    logger.info("warming up")
    await warm_up(collector_url, producer_url, sizes.warm_up_messages)
    for name in names:
        if name == "latency-cross" and producer_url == collector_url:
            logger.info("scenario %s: skipped, it needs --producer-url of another server", name)
            continue
        logger.info("scenario %s: starting", name)
        began = time.monotonic()
        if name == "drain":
            results[name] = await drain(collector_url, sizes)
        elif name == "latency":
            results[name] = await latency(collector_url, collector_url, sizes)
        elif name == "latency-cross":
            results[name] = await latency(collector_url, producer_url, sizes)
        else:
            results[name] = await scale(collector_url, producer_url, sizes)
        results[name]["wall_seconds"] = round(time.monotonic() - began, 1)
        logger.info("scenario %s: %s", name, results[name]["correctness"])
    return results


def add_costs(results: dict[str, dict[str, Any]], log_paths: list[Path]) -> None:
    lines = list(costs.read_metric_lines(log_paths))
    body_sizes = [r["mean_body_bytes"] for r in results.values() if r.get("mean_body_bytes")]
    model = costs.PricingModel(body_bytes=max(body_sizes, default=700.0))
    for result in results.values():
        result["costs"] = costs.scenario_costs(lines, result["ispbs"], model)
        server_polls = result["costs"].pop("server_empty_poll_seconds")
        if "empty_polls" in result and server_polls:
            # The client's figures include the time a request waits for the client's and
            # the server's threads; the server's start when the handler runs.
            result["empty_polls"]["server_p99_s"] = round(percentile(server_polls, 0.99), 3)
            result["empty_polls"]["server_max_s"] = round(server_polls[-1], 3)
        result["costs"]["model"] = {
            "body_bytes": round(model.body_bytes, 1),
            "message_item_write_units": model.item_units,
            "queue_entry_write_units": model.index_entry_units,
        }


def failures(results: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for name, result in results.items():
        checks = result["correctness"]
        for key in ("duplicates", "missing"):
            if checks[key]:
                problems.append(f"{name}: {checks[key]} {key} messages")
    return problems


def machine() -> dict[str, Any]:
    return report.machine_description(platform.python_version())


def measure(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], list[Path]]:
    """Run the scenarios on --base-url or on a private stack; return results and server logs."""
    if args.base_url:
        producer_url = args.producer_url or args.base_url
        results = asyncio.run(
            run_scenarios(args.scenario_names, args.base_url, producer_url, args.sizes)
        )
        return results, list(args.server_log)

    settings = dict(item.split("=", 1) for item in args.server_env)
    with BenchStack(args.run_dir, settings) as stack:
        collector_url = stack.servers[0].base_url
        producer_url = args.producer_url or stack.servers[1].base_url
        results = asyncio.run(
            run_scenarios(args.scenario_names, collector_url, producer_url, args.sizes)
        )
    return results, stack.log_paths


def write_outputs(args: argparse.Namespace, document: dict[str, Any]) -> None:
    table = report.markdown_table(document["scenarios"])
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(report.without_series(document), indent=2, default=str)
        args.json.write_text(text + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.docs:
        report.write_page(args.docs, document)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request at INFO, which would flood the output and load the client.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)

    results, log_paths = measure(args)
    if log_paths:
        add_costs(results, log_paths)

    problems = failures(results)
    document = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "passed": not problems,
        "scenarios": results,
    }
    write_outputs(args, document)
    for problem in problems:
        logger.error("correctness check failed: %s", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
