"""Results grouped for the report: medians, minima and maxima over the runs."""

import re
import statistics

REFERENCE = "reference/postgresql"


class Stat:
    """Median, minimum and maximum of one metric over the runs."""

    def __init__(self, values):
        self.values = values
        self.median = statistics.median(values)
        self.low = min(values)
        self.high = max(values)

    def format(self, formatter):
        if len(self.values) == 1 or self.low == self.high:
            return formatter(self.median)
        return f"{formatter(self.median)} [{formatter(self.low)}–{formatter(self.high)}]"


class Summary:
    """The records of a results file grouped by scenario, subject and variant."""

    def __init__(self, data):
        self.data = data
        self.options = data.get("options", {})
        self.groups = {}
        for record in data.get("records", []):
            key = (record["scenario"], record["subject"], record["variant"])
            self.groups.setdefault(key, []).append(record)

    def stat(self, scenario, subject, variant, metric):
        values = [record["metrics"].get(metric)
                  for record in self.groups.get((scenario, subject, variant), [])]
        values = [value for value in values if value is not None]
        return Stat(values) if values else None

    def variants(self, scenario, subject=None):
        found = []
        for key_scenario, key_subject, variant in self.groups:
            if key_scenario == scenario and subject in (None, key_subject):
                if variant not in found:
                    found.append(variant)
        return found

    def subjects(self, scenario):
        found = []
        for key_scenario, subject, _ in self.groups:
            if key_scenario == scenario and subject not in found:
                found.append(subject)
        return found

    def first_record(self, scenario, subject, variant):
        records = self.groups.get((scenario, subject, variant))
        return records[0] if records else None


def connection_count(variant):
    """Return N of a variant named cN, or None."""
    return int(variant[1:]) if re.fullmatch(r"c\d+", variant) else None


def best_submit(summary, subject):
    """Return (connections, Stat of the rate) of the connection count with the highest median."""
    best = None
    for variant in summary.variants("submit", subject):
        connections = connection_count(variant)
        stat = summary.stat("submit", subject, variant, "rate")
        if connections is None or stat is None:
            continue
        if best is None or stat.median > best[1].median:
            best = (connections, stat)
    return best


def healthz(summary, subject):
    variants = summary.variants("healthz", subject)
    return summary.stat("healthz", subject, variants[0], "rate") if variants else None


def e2e_rate(summary, subject):
    variants = summary.variants("e2e", subject)
    if not variants:
        return None, None
    return variants[0], summary.stat("e2e", subject, variants[0], "tasks_per_second")


def cost_sizes(summary, backend):
    sizes = []
    for variant in summary.variants("cost-growth", backend):
        match = re.fullmatch(r"(\d+)-tasks", variant)
        if match:
            sizes.append(int(match.group(1)))
    return sorted(sizes)
