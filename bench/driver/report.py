"""Renders docs/BENCHMARKS.md and its plots from the raw results JSON.

The document mixes hand-written prose with generated blocks. Each generated
block sits between two HTML comments:

    <!-- BEGIN GENERATED: name -->
    ...
    <!-- END GENERATED: name -->

A regeneration replaces only what lies between such a pair and keeps every
other line of the existing document. When the document does not exist yet,
it starts from benchmarks_skeleton.md beside this file.
"""

import os
import pathlib
import re

from . import plots
from .summary import (REFERENCE, Summary, best_submit, connection_count, cost_sizes, e2e_rate,
                      healthz)

SKELETON = pathlib.Path(__file__).resolve().parent / "benchmarks_skeleton.md"
BLOCK_PATTERN = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)",
    re.DOTALL)
MIB = 1024 * 1024
GIB = 1024 * MIB

SUBJECT_NAMES = {
    "conveyor/sqlite": "Conveyor, SQLite",
    "conveyor/postgresql": "Conveyor, PostgreSQL",
    "reference/postgresql": "Reference, PostgreSQL",
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL",
}
CONVEYOR_SUBJECTS = ("conveyor/sqlite", "conveyor/postgresql")
BACKENDS = ("sqlite", "postgresql")

# The targets that the report checks the medians against.
SUBMIT_VS_REFERENCE = 30.0
SUBMIT_VS_HEALTHZ = 0.60
E2E_VS_REFERENCE = 20.0
GET_P99_LIMIT_US = 1000.0
WAITING_TASKS = 100_000
WAITING_RSS_LIMIT = GIB
WAITING_DRAIN_LIMIT_S = 15.0
IDLE_RSS_LIMIT = 20_000_000
ANALYSIS_LIMIT = 100e6
COST_GROWTH_LIMIT = 1.5
COST_OPERATIONS = (("get", "Get"), ("get_with_text", "Get with text"),
                   ("list_first_page", "List, first page"),
                   ("list_deep_page", "List, deep page"), ("create", "Create"),
                   ("claim", "Claim"), ("complete", "Complete"))


# --- number formats -------------------------------------------------------------


def rate(value):
    return f"{value:,.0f}"


def milliseconds(micros):
    value = micros / 1000.0
    if value < 1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def micros_text(micros):
    return f"{micros:,.1f}" if micros < 100 else f"{micros:,.0f}"


def mebibytes(value):
    return f"{value / MIB:,.1f}"


def megabytes(value):
    return f"{value / 1e6:,.1f}"


def tasks_per_second(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def seconds(value):
    return f"{value:,.2f}"


def ratio(value):
    return f"{value:,.1f}×" if value >= 10 else f"{value:,.2f}×"


def plural(count, noun):
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def cell(stat, formatter):
    return stat.format(formatter) if stat is not None else "–"


def name_of(subject):
    return SUBJECT_NAMES.get(subject, subject)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(item) for item in row) + " |")
    return "\n".join(lines)


def verdict(holds):
    if holds is None:
        return "not measured"
    return "yes" if holds else "**no**"


# --- blocks ------------------------------------------------------------------------


def machine_block(summary):
    data = summary.data
    facts = data.get("machine", {})
    cpu = facts.get("cpu", {})
    disk = facts.get("data_disk", {})
    conveyor = facts.get("conveyor", {})
    options = summary.options
    lines = [
        f"- Run: {data.get('started_at')} to {data.get('finished_at')}, "
        f"{data.get('wall_seconds')} s of wall time"
        + ("" if data.get("complete") else " (**interrupted: the figures are partial**)") + ".",
        f"- CPU: {cpu.get('model')}, {cpu.get('logical_cpus')} logical CPUs "
        f"({cpu.get('usable_cpus')} usable by the benchmark).",
        f"- Memory: {facts.get('memory_bytes', 0) / GIB:.1f} GiB.",
        f"- Data directory: {disk.get('path')} on {disk.get('device')} "
        f"({disk.get('filesystem')}, mounted at {disk.get('mount_point')}, "
        f"{disk.get('filesystem_size_bytes', 0) / GIB:.0f} GiB, "
        f"{'rotational' if disk.get('rotational') == '1' else 'non-rotational'} "
        f"as the kernel reports it{', model ' + disk['model'] if disk.get('model') else ''}). "
        "SQLite files and the PostgreSQL cluster both live there.",
        f"- Kernel: {facts.get('kernel')}; {facts.get('os')}.",
        f"- Conveyor: commit {str(conveyor.get('commit'))[:12]}"
        + (f" with {conveyor.get('modified_files')} modified tracked files"
           if conveyor.get("modified_files") else "")
        + f", {conveyor.get('build_type')} build, {conveyor.get('compiler')}.",
        "- Libraries: " + ", ".join(f"{package} {version}" for package, version
                                    in sorted(facts.get("libraries", {}).items())) + ".",
        f"- {facts.get('postgres')}; {facts.get('redis')}; wrk {facts.get('wrk')}; "
        f"{facts.get('gnuplot')}; {facts.get('python')}.",
        "- Python packages of the reference: " + ", ".join(
            f"{package} {version}" for package, version
            in sorted(facts.get("python_packages", {}).items())) + ".",
        f"- Settings: {plural(options.get('runs'), 'run')} of each figure; wrk measurements of "
        f"{options.get('duration')} s with {plural(options.get('wrk_threads'), 'wrk thread')}; "
        f"submit at {', '.join(str(c) for c in options.get('connections', []))} connections; "
        f"{options.get('e2e_tasks'):,} end-to-end tasks for Conveyor and "
        f"{options.get('reference_e2e_tasks'):,} for the reference; "
        f"{options.get('waiting_tasks'):,} waiting tasks; cost growth at "
        f"{', '.join(f'{size:,}' for size in options.get('cost_sizes', []))} tasks.",
    ]
    failures = data.get("failures", [])
    if failures:
        lines.append("")
        lines.append(f"**{len(failures)} measurement(s) failed in this run:**")
        lines.append("")
        for failure in failures:
            first_line = failure["error"].strip().splitlines()[0] if failure["error"] else ""
            lines.append(f"- {failure['scenario']}, {failure['subject']}: {first_line[:300]}")
    return "\n".join(lines)


NOT_MEASURED = ("–", "not measured")


def submit_target_rows(summary):
    """Compare the best submit median over the connection counts with the reference and /healthz."""
    rows = []
    reference = best_submit(summary, REFERENCE)
    for subject in CONVEYOR_SUBJECTS:
        best = best_submit(summary, subject)
        outcome = NOT_MEASURED
        if best is not None and reference is not None:
            value = best[1].median / reference[1].median
            outcome = (f"{rate(best[1].median)}/s (c{best[0]}) vs "
                       f"{rate(reference[1].median)}/s (c{reference[0]}): {ratio(value)}",
                       verdict(value >= SUBMIT_VS_REFERENCE))
        rows.append((f"Durable submit ≥ {SUBMIT_VS_REFERENCE:.0f}× the reference",
                     name_of(subject), *outcome))
    for subject in CONVEYOR_SUBJECTS:
        best = best_submit(summary, subject)
        ceiling = healthz(summary, subject)
        outcome = NOT_MEASURED
        if best is not None and ceiling is not None:
            value = best[1].median / ceiling.median
            outcome = (f"{rate(best[1].median)}/s vs {rate(ceiling.median)}/s: {value:.0%}",
                       verdict(value >= SUBMIT_VS_HEALTHZ))
        rows.append((f"Durable submit ≥ {SUBMIT_VS_HEALTHZ:.0%} of GET /healthz",
                     name_of(subject), *outcome))
    return rows


def e2e_target_rows(summary):
    rows = []
    reference_variant, reference = e2e_rate(summary, REFERENCE)
    for subject in CONVEYOR_SUBJECTS:
        variant, conveyor = e2e_rate(summary, subject)
        outcome = NOT_MEASURED
        if conveyor is not None and reference is not None:
            value = conveyor.median / reference.median
            outcome = (f"{rate(conveyor.median)} tasks/s ({variant}) vs "
                       f"{reference.median:,.1f} tasks/s ({reference_variant}): {ratio(value)}",
                       verdict(value >= E2E_VS_REFERENCE))
        rows.append((f"End to end ≥ {E2E_VS_REFERENCE:.0f}× the reference", name_of(subject),
                     *outcome))
    return rows


def get_target_rows(summary):
    rows = []
    for subject in CONVEYOR_SUBJECTS:
        p99 = summary.stat("get", subject, "half-rate", "p99_us")
        achieved = summary.stat("get", subject, "half-rate", "rate")
        outcome = NOT_MEASURED
        if p99 is not None:
            outcome = (f"{milliseconds(p99.median)} ms at {rate(achieved.median)}/s",
                       verdict(p99.median < GET_P99_LIMIT_US))
        rows.append(("GET p99 at half the maximum rate < 1 ms", name_of(subject), *outcome))
    return rows


def waiting_target_rows(summary):
    rows = []
    for subject in CONVEYOR_SUBJECTS:
        variants = summary.variants("waiting", subject)
        outcome = NOT_MEASURED
        if variants:
            drain = summary.stat("waiting", subject, variants[0], "drain_s")
            peak = summary.stat("waiting", subject, variants[0], "peak_rss_bytes")
            tasks = summary.stat("waiting", subject, variants[0], "tasks")
            holds = drain.median < WAITING_DRAIN_LIMIT_S and peak.median < WAITING_RSS_LIMIT
            outcome = (f"{tasks.median:,.0f} tasks: {mebibytes(peak.median)} MiB, "
                       f"{seconds(drain.median)} s",
                       verdict(holds) if tasks.median >= WAITING_TASKS
                       else "not measured at 100,000 tasks")
        rows.append(("100,000 waiting tasks in one worker: peak RSS < 1 GiB, drained < 15 s",
                     name_of(subject), *outcome))
    return rows


def single_target_rows(summary):
    rows = []
    idle = summary.stat("idle-rss", "conveyor/sqlite", "serve", "rss_bytes")
    outcome = NOT_MEASURED
    if idle is not None:
        outcome = (f"{megabytes(idle.median)} MB ({mebibytes(idle.median)} MiB)",
                   verdict(idle.median < IDLE_RSS_LIMIT))
    rows.append(("Idle RSS < 20 MB (20,000,000 bytes)", name_of("conveyor/sqlite"), *outcome))

    english = summary.stat("analysis", "AnalyzeEnglishProse", "single-thread", "bytes_per_second")
    outcome = NOT_MEASURED
    if english is not None:
        outcome = (f"{megabytes(english.median)} MB/s", verdict(english.median >= ANALYSIS_LIMIT))
    rows.append(("Analysis ≥ 100 MB/s per core, English prose", "one thread", *outcome))
    return rows


def cost_target_rows(summary):
    """Compare the p50 latency at the largest table size with the smallest."""
    rows = []
    for backend in BACKENDS:
        sizes = cost_sizes(summary, backend)
        for operation in ("get", "list_first_page", "list_deep_page", "claim"):
            target = f"Cost growth: {operation} p50 at 10,000,000 tasks ≤ {COST_GROWTH_LIMIT}× at 10,000"
            metric = f"latency_us.{operation}.p50"
            low = high = None
            if len(sizes) >= 2:
                low = summary.stat("cost-growth", backend, f"{sizes[0]}-tasks", metric)
                high = summary.stat("cost-growth", backend, f"{sizes[-1]}-tasks", metric)
            if low is None or high is None:
                rows.append((target, name_of(backend), *NOT_MEASURED))
                continue
            value = high.median / low.median
            measured = (f"{micros_text(high.median)} µs at {sizes[-1]:,} vs "
                        f"{micros_text(low.median)} µs at {sizes[0]:,}: {ratio(value)}")
            full_size = sizes[0] <= 10_000 and sizes[-1] >= 10_000_000
            rows.append((target, name_of(backend), measured,
                         verdict(value <= COST_GROWTH_LIMIT) if full_size
                         else "not measured at 10,000,000 tasks"))
    return rows


def targets_block(summary):
    rows = [*submit_target_rows(summary), *e2e_target_rows(summary), *get_target_rows(summary),
            *waiting_target_rows(summary), *single_target_rows(summary),
            *cost_target_rows(summary)]
    return table(("Target", "Subject", "Measured (medians)", "Holds"), rows)


def ceilings_block(summary):
    rows = []
    for subject in CONVEYOR_SUBJECTS:
        for variant in summary.variants("healthz", subject):
            rows.append((f"GET /healthz, {variant}", name_of(subject),
                         cell(summary.stat("healthz", subject, variant, "rate"), rate) + " req/s",
                         cell(summary.stat("healthz", subject, variant, "p50_us"), milliseconds),
                         cell(summary.stat("healthz", subject, variant, "p99_us"), milliseconds)))
    for backend in BACKENDS:
        for variant in summary.variants("commit-ceiling", backend):
            rows_per = variant.split("-")[0]
            rows.append((f"Durable commits, {rows_per} row(s) per transaction", name_of(backend),
                         cell(summary.stat("commit-ceiling", backend, variant,
                                           "transactions_per_second"), rate) + " tx/s, "
                         + cell(summary.stat("commit-ceiling", backend, variant,
                                             "rows_per_second"), rate) + " rows/s",
                         cell(summary.stat("commit-ceiling", backend, variant, "commit_p50_us"),
                              milliseconds),
                         cell(summary.stat("commit-ceiling", backend, variant, "commit_p99_us"),
                              milliseconds)))
    if not rows:
        return "Not measured in this run."
    return table(("Ceiling", "Subject", "Rate", "p50 ms", "p99 ms"), rows)


def submit_block(summary, plot_paths):
    rows = []
    variants = sorted({variant for subject in summary.subjects("submit")
                       for variant in summary.variants("submit", subject)},
                      key=lambda variant: connection_count(variant) or 0)
    for variant in variants:
        reference = summary.stat("submit", REFERENCE, variant, "rate")
        for subject in (*CONVEYOR_SUBJECTS, REFERENCE):
            stat = summary.stat("submit", subject, variant, "rate")
            if stat is None:
                continue
            versus_reference = "–"
            versus_healthz = "–"
            if subject != REFERENCE and reference is not None:
                versus_reference = ratio(stat.median / reference.median)
            ceiling = healthz(summary, subject)
            if subject != REFERENCE and ceiling is not None:
                versus_healthz = f"{stat.median / ceiling.median:.0%}"
            errors = summary.stat("submit", subject, variant, "status_errors")
            socket_errors = summary.stat("submit", subject, variant, "socket_errors")
            error_count = (errors.high if errors else 0) + (socket_errors.high if socket_errors
                                                            else 0)
            rows.append((connection_count(variant), name_of(subject), cell(stat, rate),
                         cell(summary.stat("submit", subject, variant, "p50_us"), milliseconds),
                         cell(summary.stat("submit", subject, variant, "p99_us"), milliseconds),
                         versus_reference, versus_healthz, f"{error_count:,.0f}"))
    if not rows:
        return "Not measured in this run."
    parts = [table(("Connections", "Subject", "Requests/s", "p50 ms", "p99 ms",
                    "vs reference", "vs /healthz", "Errors (worst run)"), rows)]
    if "submit" in plot_paths:
        parts.append(f"![Submit throughput against connections]({plot_paths['submit']})")
    return "\n\n".join(parts)


def get_block(summary):
    rows = []
    for subject in CONVEYOR_SUBJECTS:
        maximum = [variant for variant in summary.variants("get", subject)
                   if variant.startswith("max")]
        if not maximum:
            continue
        rows.append((name_of(subject),
                     cell(summary.stat("get", subject, maximum[0], "rate"), rate),
                     cell(summary.stat("get", subject, maximum[0], "p99_us"), milliseconds),
                     cell(summary.stat("get", subject, "half-rate", "target_rate"), rate),
                     cell(summary.stat("get", subject, "half-rate", "rate"), rate),
                     cell(summary.stat("get", subject, "half-rate", "p50_us"), milliseconds),
                     cell(summary.stat("get", subject, "half-rate", "p99_us"), milliseconds),
                     cell(summary.stat("get", subject, "half-rate", "p999_us"), milliseconds)))
    if not rows:
        return "Not measured in this run."
    return table(("Subject", "Max rate, c64", "p99 ms at max", "Paced target/s", "Achieved/s",
                  "p50 ms paced", "p99 ms paced", "p99.9 ms paced"), rows)


def list_block(summary):
    rows = []
    for subject in CONVEYOR_SUBJECTS:
        for variant in summary.variants("list", subject):
            page = "first page" if variant == "first-page" else \
                f"page after {variant.split('-')[1]} rows"
            rows.append((name_of(subject), page,
                         cell(summary.stat("list", subject, variant, "rate"), rate),
                         cell(summary.stat("list", subject, variant, "p50_us"), milliseconds),
                         cell(summary.stat("list", subject, variant, "p99_us"), milliseconds)))
    if not rows:
        return "Not measured in this run."
    return table(("Subject", "Page (limit 20)", "Requests/s, c64", "p50 ms", "p99 ms"), rows)


def e2e_block(summary):
    rows = []
    _, reference = e2e_rate(summary, REFERENCE)
    for subject in (*CONVEYOR_SUBJECTS, REFERENCE):
        for variant in summary.variants("e2e", subject):
            stat = summary.stat("e2e", subject, variant, "tasks_per_second")
            versus = ratio(stat.median / reference.median) if (
                reference is not None and subject != REFERENCE) else "–"
            failed = summary.stat("e2e", subject, variant, "failed")
            rows.append((name_of(subject), variant.split("-")[0],
                         cell(summary.stat("e2e", subject, variant, "span_s"), seconds),
                         cell(stat, tasks_per_second), versus,
                         cell(failed, lambda value: f"{value:,.0f}")))
    if not rows:
        return "Not measured in this run."
    return table(("Subject", "Tasks", "First created to last finished, s", "Tasks/s",
                  "vs reference", "Failed tasks"), rows)


def waiting_block(summary):
    rows = []
    for subject in CONVEYOR_SUBJECTS:
        for variant in summary.variants("waiting", subject):
            rows.append((name_of(subject), variant.split("-")[0],
                         cell(summary.stat("waiting", subject, variant, "drain_s"), seconds),
                         cell(summary.stat("waiting", subject, variant, "peak_rss_bytes"),
                              mebibytes)))
    if not rows:
        return "Not measured in this run."
    return table(("Subject", "Tasks", "Worker start to last finished, s", "Peak RSS (VmHWM), MiB"),
                 rows)


def idle_block(summary):
    rss = summary.stat("idle-rss", "conveyor/sqlite", "serve", "rss_bytes")
    peak = summary.stat("idle-rss", "conveyor/sqlite", "serve", "peak_rss_bytes")
    if rss is None:
        return "Not measured in this run."
    return table(("Process", "VmRSS, MB", "VmRSS, MiB", "VmHWM, MiB"),
                 [("conveyor serve, SQLite", cell(rss, megabytes), cell(rss, mebibytes),
                   cell(peak, mebibytes))])


def analysis_block(summary):
    rows = []
    for subject in summary.subjects("analysis"):
        stat = summary.stat("analysis", subject, "single-thread", "bytes_per_second")
        rows.append((subject, cell(stat, megabytes)))
    if not rows:
        return "Not measured in this run."
    return table(("Benchmark (about 1 MiB of text per call)", "MB/s on one thread"), rows)


def cost_block(summary):
    rows = []
    fills = []
    for backend in BACKENDS:
        sizes = cost_sizes(summary, backend)
        if not sizes:
            continue
        for operation, label in COST_OPERATIONS:
            row = [name_of(backend), label]
            for size in sizes:
                variant = f"{size}-tasks"
                for percentile in ("p50", "p99"):
                    row.append(cell(summary.stat("cost-growth", backend, variant,
                                                 f"latency_us.{operation}.{percentile}"),
                                    micros_text))
            if len(sizes) >= 2:
                low = summary.stat("cost-growth", backend, f"{sizes[0]}-tasks",
                                   f"latency_us.{operation}.p50")
                high = summary.stat("cost-growth", backend, f"{sizes[-1]}-tasks",
                                    f"latency_us.{operation}.p50")
                row.append(ratio(high.median / low.median) if low and high else "–")
            rows.append(row)
        for size in sizes:
            variant = f"{size}-tasks"
            fills.append((name_of(backend), f"{size:,}",
                          cell(summary.stat("cost-growth", backend, variant,
                                            "fill.tasks_added"), rate),
                          cell(summary.stat("cost-growth", backend, variant,
                                            "fill.total_seconds"), seconds),
                          cell(summary.stat("cost-growth", backend, variant, "database_bytes"),
                               mebibytes)))
    if not rows:
        return "Not measured in this run."
    all_sizes = sorted({size for backend in BACKENDS for size in cost_sizes(summary, backend)})
    header = ["Backend", "Operation"]
    for size in all_sizes:
        header += [f"p50 µs at {size:,}", f"p99 µs at {size:,}"]
    if len(all_sizes) >= 2:
        header.append("p50 growth")
    return "\n\n".join([
        table(header, rows),
        table(("Backend", "Tasks", "Tasks added by the fill", "Fill time, s", "Database, MiB"),
              fills)])


def cpu_block(summary):
    rows = []
    for scenario in ("submit", "get"):
        for subject in summary.subjects(scenario):
            for variant in summary.variants(scenario, subject):
                wrk_cores = summary.stat(scenario, subject, variant, "wrk_cpu_cores")
                if wrk_cores is None:
                    continue
                rows.append((scenario, name_of(subject), variant,
                             cell(wrk_cores, lambda value: f"{value:.2f}"),
                             cell(summary.stat(scenario, subject, variant, "server_cpu_cores"),
                                  lambda value: f"{value:.2f}"),
                             cell(summary.stat(scenario, subject, variant, "postgres_cpu_cores"),
                                  lambda value: f"{value:.2f}")))
    if not rows:
        return "Not measured in this run."
    return table(("Scenario", "Subject", "Variant", "wrk, cores", "Server tree, cores",
                  "PostgreSQL, cores"), rows)


def latency_plot_block(plot_paths):
    if "latency" not in plot_paths:
        return "No latency figures in this run."
    return f"![p50 and p99 latency per scenario]({plot_paths['latency']})"


def normalize_command(command, data):
    """Replace the run's temporary paths, ports and database names with placeholders."""
    repository = str(pathlib.Path(__file__).resolve().parents[2])
    command = command.replace(repository + "/", "")
    command = re.sub(r"/\S*?/conveyor-bench-[\w]+/", "$WORK/", command)
    command = re.sub(r"postgresql://postgres@127\.0\.0\.1:\d+/\w+",
                     "postgresql://postgres@127.0.0.1:$PG_PORT/$DB", command)
    command = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", command)
    command = re.sub(r"--port \d+", "--port $PORT", command)
    command = re.sub(r"\$WORK/\d{4}-(\w+)\.db", r"$WORK/\1.db", command)
    command = re.sub(r"cursor=[\w%-]+", "cursor=$CURSOR", command)
    return command


def commands_block(summary):
    sections = []
    seen_scenarios = []
    for scenario, _, _ in summary.groups:
        if scenario not in seen_scenarios:
            seen_scenarios.append(scenario)
    for scenario in seen_scenarios:
        lines = []
        for (key_scenario, subject, variant), records in summary.groups.items():
            if key_scenario != scenario:
                continue
            for command in records[0].get("commands", []):
                normalized = normalize_command(command, summary.data)
                if normalized not in lines:
                    lines.append(normalized)
        sections.append(f"{scenario}:\n\n```sh\n" + "\n".join(lines) + "\n```")
    if not sections:
        return "No commands: nothing was measured."
    return "\n\n".join(sections)


# --- the document ------------------------------------------------------------------


def build_blocks(summary, plot_paths):
    return {
        "machine": machine_block(summary),
        "targets": targets_block(summary),
        "ceilings": ceilings_block(summary),
        "submit": submit_block(summary, plot_paths),
        "get": get_block(summary),
        "list": list_block(summary),
        "e2e": e2e_block(summary),
        "waiting": waiting_block(summary),
        "idle-rss": idle_block(summary),
        "analysis": analysis_block(summary),
        "cost-growth": cost_block(summary),
        "cpu": cpu_block(summary),
        "latency-plot": latency_plot_block(plot_paths),
        "commands": commands_block(summary),
    }


def fill_blocks(text, blocks):
    """Replace the body of each generated block in text, and append the blocks that text lacks."""
    found = set()

    def replace(match):
        name = match.group("name")
        if name not in blocks:
            return match.group(0)
        found.add(name)
        return f"{match.group(1)}{blocks[name].rstrip()}\n{match.group(4)}"

    text = BLOCK_PATTERN.sub(replace, text)
    for name, body in blocks.items():
        if name not in found:
            text = (text.rstrip() + f"\n\n<!-- BEGIN GENERATED: {name} -->\n{body.rstrip()}\n"
                    f"<!-- END GENERATED: {name} -->\n")
    return text


def render(data, document, plots_dir):
    """Write the plots into plots_dir and regenerate the blocks of document."""
    summary = Summary(data)
    document = pathlib.Path(document)
    written = plots.draw(summary, pathlib.Path(plots_dir))
    plot_paths = {name: os.path.relpath(path, document.parent) for name, path in written.items()}
    template = document.read_text() if document.exists() else SKELETON.read_text()
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(fill_blocks(template, build_blocks(summary, plot_paths)))
