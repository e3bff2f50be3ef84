"""Turn benchmark results into a Markdown table, PNG plots and the benchmark page."""

import math
import os
import platform
import string
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).with_name("page_template.md")
LATENCY_PLOT = "benchmarks-latency.png"
THROUGHPUT_PLOT = "benchmarks-throughput.png"
POLL_PLOT = "benchmarks-polls.png"


def machine_description(python_version: str) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": python_version,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return math.nan


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def figure_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Rows of (scenario, figure, value, target) for every figure of the run."""
    rows: list[tuple[str, str, str, str]] = []
    drain = results.get("drain")
    if drain:
        rows += [
            ("drain", "messages preloaded for one ISPB", _fmt(drain["messages"]), ""),
            ("drain", "multipart collectors", _fmt(drain["collectors"]), ""),
            ("drain", "delivered messages/s", _fmt(drain["messages_per_second"]), ">= 1,000"),
            ("drain", "seconds to drain", _fmt(drain["seconds"]), ""),
            ("drain", "mean messages per reply", _fmt(drain["mean_batch"]), ""),
            ("drain", "preload messages/s", _fmt(drain["preload_messages_per_second"]), ""),
        ]
    for name, label in (("latency", "same process"), ("latency-cross", "other process")):
        result = results.get(name)
        if not result:
            continue
        figures = result["latency"]
        rate = _fmt(result["rate_per_second"])
        rows += [
            (name, f"messages at {rate}/s, created on the {label}", _fmt(figures["count"]), ""),
            (name, "p50 ms", _fmt(figures["p50_ms"]), "< 40"),
            (name, "p95 ms", _fmt(figures["p95_ms"]), ""),
            (name, "p99 ms", _fmt(figures["p99_ms"]), "< 150"),
            (name, "max ms", _fmt(figures["max_ms"]), ""),
        ]
    scale_result = results.get("scale")
    if scale_result:
        polls = scale_result["empty_polls"]
        figures = scale_result["latency"]
        errors = scale_result["errors"]
        read_errors = sum(n for kind, n in errors.items() if not kind.startswith("close"))
        close_errors = sum(n for kind, n in errors.items() if kind.startswith("close"))
        rows += [
            ("scale", "waiting streams", _fmt(scale_result["streams"]), "300"),
            ("scale", "errors of reads and creates", _fmt(read_errors), "0"),
            ("scale", "errors of the DELETEs sent all at once at the end", _fmt(close_errors), ""),
            ("scale", "empty 8 s polls", _fmt(polls["count"]), ""),
            ("scale", "empty poll p50 s", _fmt(polls["p50_s"]), ""),
            ("scale", "empty poll p99 s", _fmt(polls["p99_s"]), ""),
            ("scale", "empty poll max s", _fmt(polls["max_s"]), "<= 8.5"),
            ("scale", "empty polls over 8.5 s", _fmt(polls["over_8_5_s"]), "0"),
            (
                "scale",
                "empty poll p99 s, server side",
                _fmt(polls.get("server_p99_s", math.nan)),
                "",
            ),
            (
                "scale",
                "empty poll max s, server side",
                _fmt(polls.get("server_max_s", math.nan)),
                "",
            ),
            (
                "scale",
                "client event-loop lag p99 s",
                _fmt(scale_result["client_loop_lag"]["p99_s"]),
                "",
            ),
            ("scale", "messages created while waiting", _fmt(figures["count"]), ""),
            ("scale", "their p50 ms", _fmt(figures["p50_ms"]), ""),
            ("scale", "their p99 ms", _fmt(figures["p99_ms"]), "< 1,000"),
        ]
    for name, result in results.items():
        checks = result["correctness"]
        rows += [
            (
                name,
                "duplicates / missing / unexpected",
                f"{checks['duplicates']} / {checks['missing']} / {checks['unexpected']}",
                "0 / 0 / any",
            ),
        ]
    return rows


def cost_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for name, result in results.items():
        cost = result.get("costs")
        if not cost:
            continue
        per_message = cost["per_delivered_message"]
        rows.append(
            (
                name,
                "units per delivered message (read + write = total)",
                f"{_fmt(per_message['read'])} + {_fmt(per_message['write'])} = "
                f"{_fmt(per_message['total'])}",
                "<= 4" if name == "drain" else "",
            )
        )
        rows.append(
            (name, "store calls per non-empty reply", _fmt(cost["store_calls_per_reply"]), "")
        )
        if name == "scale":
            idle = cost["per_idle_stream_minute"]
            rows.append(
                (
                    name,
                    "units per idle stream-minute (read + write)",
                    f"{_fmt(idle['read'])} + {_fmt(idle['write'])}",
                    "<= 120 read",
                )
            )
        created = cost["per_created_message"]
        rows.append((name, "units per created message (write)", _fmt(created["write"]), ""))
    return rows


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| Scenario | Figure | Value | Target |", "|---|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    text = _table(figure_rows(results))
    costs = cost_rows(results)
    if costs:
        text += "\n\n" + _table(costs)
    return text


def cost_detail_table(results: dict[str, dict[str, Any]]) -> str:
    """Reported and computed units, and store calls by operation, per scenario."""
    lines = [
        "| Scenario | Requests | Delivered | Store calls | Without ConsumedCapacity | "
        "Reported RCU | Computed minimum RCU | Reported WCU | Computed statement WCU | "
        "Computed index WCU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        cost = result.get("costs")
        if not cost:
            continue
        d = cost["delivery"]
        lines.append(
            f"| {name} | {_fmt(d['requests'])} | {_fmt(d['messages'])} | "
            f"{_fmt(d['store_calls'])} | {_fmt(d['unreported_store_calls'])} | "
            f"{_fmt(d['reported_read_units'])} | {_fmt(d['computed_read_minimum_units'])} | "
            f"{_fmt(d['reported_write_units'])} | "
            f"{_fmt(d['computed_statement_write_units'])} | "
            f"{_fmt(d['computed_index_write_units'])} |"
        )
    lines.append("")
    lines.append("| Scenario | Store calls of the delivery requests, by operation |")
    lines.append("|---|---|")
    for name, result in results.items():
        cost = result.get("costs")
        if cost:
            calls = ", ".join(
                f"{k} {v:,}" for k, v in cost["delivery"]["calls_by_operation"].items()
            )
            lines.append(f"| {name} | {calls} |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, Any]], directory: Path) -> list[str]:
    """Draw the plots that the results allow; return their file names."""
    import matplotlib  # noqa: PLC0415 - only the page needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    written = []
    for draw, name in (
        (_plot_latency, LATENCY_PLOT),
        (_plot_throughput, THROUGHPUT_PLOT),
        (_plot_polls, POLL_PLOT),
    ):
        figure, axis = plt.subplots(figsize=(8, 4.5))
        if draw(axis, results):
            figure.tight_layout()
            figure.savefig(directory / name, dpi=100)
            written.append(name)
        plt.close(figure)
    return written


def _plot_latency(axis: Any, results: dict[str, dict[str, Any]]) -> bool:
    drawn = False
    for name in ("latency", "latency-cross", "scale"):
        values = sorted(results[name]["series"].get("latency_ms", [])) if name in results else []
        if values:
            fractions = [(i + 1) / len(values) for i in range(len(values))]
            axis.plot(values, fractions, label=f"{name} (n={len(values)})")
            drawn = True
    axis.set_xscale("log")
    axis.set_xlabel("create request sent to message received (ms, log scale)")
    axis.set_ylabel("fraction of messages")
    axis.set_title("Delivery latency, cumulative distribution")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    return drawn


def _plot_throughput(axis: Any, results: dict[str, dict[str, Any]]) -> bool:
    drain = results.get("drain")
    times = drain["series"]["receipt_seconds"] if drain else []
    if not drain or not times:
        return False
    width = 0.5
    bins = math.ceil(max(times) / width) + 1
    counts = [0] * bins
    for t in times:
        counts[int(t / width)] += 1
    starts = [i * width for i in range(bins)]
    axis.bar(starts, [c / width for c in counts], width=width, align="edge")
    mean = drain["messages_per_second"]
    axis.axhline(mean, color="black", linestyle="--", label=f"mean {mean:,.0f} msg/s")
    axis.set_xlabel("seconds since the collectors started")
    axis.set_ylabel("messages received per second")
    axis.set_title(f"Drain of {drain['messages']:,} messages by {drain['collectors']} collectors")
    axis.legend()
    return True


def _plot_polls(axis: Any, results: dict[str, dict[str, Any]]) -> bool:
    scale_result = results.get("scale")
    durations = scale_result["series"]["empty_poll_seconds"] if scale_result else []
    if not scale_result or not durations:
        return False
    axis.hist(durations, bins=40)
    axis.axvline(8.5, color="black", linestyle="--", label="8.5 s")
    axis.set_xlabel("duration of a poll that ended empty (s)")
    axis.set_ylabel("polls")
    axis.set_title(f"Empty long polls with {scale_result['streams']} streams waiting")
    axis.legend()
    return True


def without_series(document: dict[str, Any]) -> dict[str, Any]:
    """Return the document without the raw series, which only the plots need."""
    scenarios = {
        name: {k: v for k, v in result.items() if k != "series"}
        for name, result in document["scenarios"].items()
    }
    return {**document, "scenarios": scenarios}


def write_page(path: Path, document: dict[str, Any]) -> None:
    """Write the benchmark page from its template, with the figures and plots of this run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    results = document["scenarios"]
    plots = plot(results, path.parent)
    machine = document["machine"]
    images = "\n\n".join(f"![{name}]({name})" for name in plots)
    page = string.Template(TEMPLATE.read_text()).substitute(
        command=document["command"],
        date=document.get("date", ""),
        cpus=machine["cpus"],
        cpu_model=machine["cpu_model"],
        memory_gib=machine["memory_gib"],
        os=machine["os"],
        python=machine["python"],
        load=" ".join(str(x) for x in machine["load_average_at_end"]),
        passed="passed" if document["passed"] else "FAILED",
        figures=markdown_table(results),
        cost_detail=cost_detail_table(results),
        plots=images,
    )
    path.write_text(page)
