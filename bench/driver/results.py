"""The raw results file: every record of every run, written after each scenario."""

import json
import os
import time


class Results:
    """Records and failures of one driver run, saved as JSON."""

    def __init__(self, path, options, machine):
        self.path = path
        self.data = {
            "format": 1,
            "complete": False,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "finished_at": None,
            "wall_seconds": None,
            "options": options,
            "machine": machine,
            "records": [],
            "failures": [],
        }
        self._started = time.monotonic()

    def add_record(self, record):
        self.data["records"].append(record)

    def add_failure(self, failure):
        self.data["failures"].append(failure)

    def finish(self, complete):
        self.data["complete"] = complete
        self.data["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.data["wall_seconds"] = round(time.monotonic() - self._started, 1)
        self.save()

    def save(self):
        """Write the file through a temporary name, so a reader never sees half of it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.data, indent=1) + "\n")
        os.replace(temporary, self.path)


def load(path):
    with open(path, encoding="utf-8") as results_file:
        return json.load(results_file)
