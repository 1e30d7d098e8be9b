"""PNG plots of a results summary, drawn by gnuplot."""

import pathlib
import shutil
import subprocess
import sys
import tempfile

from .summary import connection_count, healthz

GNUPLOT_TIMEOUT_S = 60
FONT = "DejaVu Sans,11"
SUBMIT_SERIES = (("conveyor/sqlite", "Conveyor, SQLite", "#1f77b4"),
                 ("conveyor/postgresql", "Conveyor, PostgreSQL", "#2ca02c"),
                 ("reference/postgresql", "Reference (FastAPI + Celery), PostgreSQL", "#d62728"))
LATENCY_SUBJECTS = (("conveyor/sqlite", "SQLite"), ("conveyor/postgresql", "PostgreSQL"),
                    ("reference/postgresql", "reference"))


class PlotError(RuntimeError):
    """gnuplot failed; the message carries its stderr."""


def _terminal():
    """Return pngcairo when this gnuplot has it, else the libgd png terminal."""
    probe = subprocess.run(["gnuplot", "-e", "set terminal pngcairo"], capture_output=True,
                           text=True, timeout=GNUPLOT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if probe.returncode == 0 and "unknown" not in probe.stderr.lower():
        return f'pngcairo size 960,580 enhanced font "{FONT}"'
    return "png size 960,580"


def _run_gnuplot(script, directory):
    completed = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True,
                               cwd=directory, timeout=GNUPLOT_TIMEOUT_S)
    if completed.returncode != 0:
        raise PlotError(f"gnuplot failed: {completed.stderr.strip()}")


def _quote(text):
    return '"' + text.replace('"', "'") + '"'


def submit_plot(summary, output, terminal, directory):
    """Requests per second of POST /v1/tasks against connections, with /healthz lines."""
    series = []
    all_connections = []
    for subject, title, color in SUBMIT_SERIES:
        points = []
        for variant in summary.variants("submit", subject):
            connections = connection_count(variant)
            stat = summary.stat("submit", subject, variant, "rate")
            if connections is not None and stat is not None:
                points.append((connections, stat.median, stat.low, stat.high))
        if points:
            points.sort()
            path = directory / f"submit-{subject.replace('/', '-')}.dat"
            path.write_text("".join(f"{c} {m} {lo} {hi}\n" for c, m, lo, hi in points))
            series.append(f"{_quote(path.name)} using 1:2:3:4 with yerrorlines lw 2 pt 7 "
                          f"lc rgb {_quote(color)} title {_quote(title)}")
            all_connections += [point[0] for point in points]
    if not series:
        return False
    for subject, title, color in SUBMIT_SERIES[:2]:
        ceiling = healthz(summary, subject)
        if ceiling is not None:
            series.append(f"{ceiling.median} with lines dt 2 lw 1.5 lc rgb {_quote(color)} "
                          f"title {_quote('GET /healthz ceiling, ' + title.split(', ')[1])}")
    script = f"""
set terminal {terminal}
set output {_quote(str(output))}
set title "POST /v1/tasks with 1 KB of text: median requests/s (bars: min to max)"
set xlabel "connections"
set ylabel "requests per second"
set logscale x 2
set logscale y 10
set xrange [{min(all_connections) / 1.4}:{max(all_connections) * 1.4}]
set xtics ({", ".join(str(c) for c in sorted(set(all_connections)))})
set format y "%.0f"
set grid
set key outside bottom center horizontal maxrows 3
plot {", ".join(series)}
"""
    _run_gnuplot(script, directory)
    return True


def latency_rows(summary):
    """Return (label, p50 ms, p99 ms) for each measured scenario, median over runs."""
    rows = []

    def add(scenario, subject, variant, label):
        p50 = summary.stat(scenario, subject, variant, "p50_us")
        p99 = summary.stat(scenario, subject, variant, "p99_us")
        if p50 is not None and p99 is not None:
            rows.append((label, p50.median / 1000.0, p99.median / 1000.0))

    for subject, short in LATENCY_SUBJECTS:
        variants = summary.variants("submit", subject)
        if variants:
            chosen = "c64" if "c64" in variants else variants[0]
            add("submit", subject, chosen, f"submit {chosen}, {short}")
    for subject, short in LATENCY_SUBJECTS[:2]:
        for variant in summary.variants("healthz", subject):
            add("healthz", subject, variant, f"healthz {variant}, {short}")
        for variant in summary.variants("get", subject):
            add("get", subject, variant,
                f"GET id {'half rate' if variant == 'half-rate' else 'max, c64'}, {short}")
        for variant in summary.variants("list", subject):
            page = "first page" if variant == "first-page" else "deep page"
            add("list", subject, variant, f"list {page}, {short}")
    return rows


def latency_plot(summary, output, terminal, directory):
    rows = latency_rows(summary)
    if not rows:
        return False
    path = directory / "latency.dat"
    path.write_text("".join(f"{_quote(label)} {p50} {p99}\n" for label, p50, p99 in rows))
    script = f"""
set terminal {terminal}
set output {_quote(str(output))}
set title "Latency per scenario, median over runs (log scale)"
set ylabel "milliseconds"
set logscale y 10
set yrange [0.01:*]
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by 35 right scale 0 font ",9"
set grid ytics
set key top left
set bmargin 10
plot {_quote(path.name)} using 2:xtic(1) title "p50", "" using 3 title "p99"
"""
    _run_gnuplot(script, directory)
    return True


def draw(summary, plots_dir):
    """Draw every plot the summary has data for; return {name: path} of the files written."""
    if shutil.which("gnuplot") is None:
        print("report: gnuplot is not installed; the report has no plots", file=sys.stderr)
        return {}
    plots_dir.mkdir(parents=True, exist_ok=True)
    terminal = _terminal()
    written = {}
    with tempfile.TemporaryDirectory(prefix="conveyor-plots-") as scratch:
        directory = pathlib.Path(scratch)
        for name, drawer, filename in (("submit", submit_plot, "submit_throughput.png"),
                                       ("latency", latency_plot, "latency.png")):
            output = plots_dir.resolve() / filename
            try:
                if drawer(summary, output, terminal, directory):
                    written[name] = output
            except PlotError as error:
                print(f"report: the {name} plot failed: {error}", file=sys.stderr)
    return written
