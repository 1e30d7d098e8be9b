"""A task's path from PENDING to COMPLETED, and the analysis it returns."""

import concurrent.futures
import time

import pytest

from conftest import get_task, submit, wait_for_status
from problems import parse_timestamp

PROSE = (
    "The queue keeps every task safe. A worker takes a task from the queue, works on the task, "
    "and writes the result back. When a worker crashes, the queue gives the task to another worker "
    "after its lease expires. Workers don't lose tasks, and the queue doesn't forget them. "
    "In 2024 the team ran 300 workers against one queue."
)

# The prose is ASCII letters, digits, spaces, commas, full stops and
# apostrophes between letters. For such text the ICU word segments are
# exactly the runs matched by [A-Za-z0-9]+('[A-Za-z0-9]+)*, so the expected
# values below were counted with that expression and the English stop-word
# list: 59 words (2024 and 300 included), 39 distinct after lower-casing.
# Stop words among them: the, a, from, on, and, when, to, after, its, don't,
# doesn't, them, in, against.
PROSE_WORD_COUNT = 59
PROSE_UNIQUE_WORDS = 39
PROSE_TOP_WORDS = [
    {"word": "queue", "count": 5},
    {"word": "task", "count": 4},
    {"word": "worker", "count": 3},
    {"word": "workers", "count": 2},
    {"word": "another", "count": 1},
]
# Snowball English stems workers to worker and tasks to task, so three groups
# reach 5 and sort by their shown words. Words counted once follow in order.
PROSE_TOP_WORDS_STEMMED = [
    {"word": "queue", "count": 5},
    {"word": "task", "count": 5},
    {"word": "worker", "count": 5},
    {"word": "another", "count": 1},
    {"word": "back", "count": 1},
]


def test_task_runs_pending_processing_completed(start_server):
    server = start_server("serve", "--simulated-delay", "1s..2s")
    submitted_at = time.monotonic()
    task = submit(server, PROSE)
    assert task["status"] == "PENDING"
    assert task["attempts"] == 0
    assert task["text_bytes"] == len(PROSE.encode())

    processing = wait_for_status(server, task["task_id"], {"PROCESSING", "COMPLETED"}, timeout=5)
    claim_seconds = time.monotonic() - submitted_at
    assert processing["status"] == "PROCESSING", "the task finished before its 1s delay"
    assert claim_seconds < 1.0, f"claimed after {claim_seconds:.2f}s"
    assert processing["attempts"] == 1
    assert processing["started_at"] is not None
    assert processing["result"] is None
    assert processing["finished_at"] is None

    done = wait_for_status(server, task["task_id"], "COMPLETED", timeout=15)
    assert done["attempts"] == 1
    assert done["error"] is None
    assert done["next_attempt_at"] is None
    assert done["result"] == {
        "word_count": PROSE_WORD_COUNT,
        "unique_words": PROSE_UNIQUE_WORDS,
        "top_words": PROSE_TOP_WORDS,
    }
    worked = parse_timestamp(done["finished_at"]) - parse_timestamp(done["started_at"])
    # The simulated delay of 1s..2s lies between claim and finish; the
    # upper bound leaves room for a slow machine.
    assert worked.total_seconds() >= 0.99, f"finished {worked} after start"
    assert worked.total_seconds() < 10, f"finished {worked} after start"


def test_completed_task_stays_completed(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    task = submit(server, PROSE)
    done = wait_for_status(server, task["task_id"], "COMPLETED")
    again = get_task(server, task["task_id"])
    assert again == done


def test_stemming_groups_words(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    task = submit(server, {"text": PROSE, "params": {"stem": True}})
    done = wait_for_status(server, task["task_id"], "COMPLETED")
    assert done["result"]["word_count"] == PROSE_WORD_COUNT
    assert done["result"]["unique_words"] == PROSE_UNIQUE_WORDS
    assert done["result"]["top_words"] == PROSE_TOP_WORDS_STEMMED


def test_top_n_limits_ranking(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    task = submit(server, {"text": PROSE, "params": {"top_n": 2}})
    done = wait_for_status(server, task["task_id"], "COMPLETED")
    assert done["result"]["top_words"] == PROSE_TOP_WORDS[:2]


@pytest.mark.parametrize(
    "text, word_count, unique_words, top_words",
    [
        ("The cat and the hat.", 5, 4, [("cat", 1), ("hat", 1)]),
        ("Don\u2019t stop, DON'T stop!", 4, 2, [("stop", 2)]),
        ("Stra\u00dfe STRASSE stra\u00dfe", 3, 1, [("strasse", 3)]),
        ("In 2026, 3.14 is pi.", 5, 5, [("pi", 1)]),
        ("state-of-the-art art", 5, 4, [("art", 2), ("state", 1)]),
        ("\U0001F642 !!! ...", 0, 0, []),
        ("", 0, 0, []),
    ],
    ids=["cat-hat", "apostrophes", "casefold", "numbers", "hyphens", "no-words", "empty"],
)
def test_analysis_examples(start_server, text, word_count, unique_words, top_words):
    server = start_server("serve", "--simulated-delay", "0")
    task = submit(server, text)
    done = wait_for_status(server, task["task_id"], "COMPLETED")
    assert done["result"] == {
        "word_count": word_count,
        "unique_words": unique_words,
        "top_words": [{"word": word, "count": count} for word, count in top_words],
    }


def test_delay_holds_timers_not_threads(start_server):
    # 200 tasks that each wait 1s..2s finish in a few seconds only when the
    # waits overlap; one at a time they would take over 200s.
    server = start_server("serve", "--simulated-delay", "1s..2s")
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        tasks = list(pool.map(lambda index: submit(server, f"task {index}"), range(200)))
    started = time.monotonic()
    for task in tasks:
        wait_for_status(server, task["task_id"], "COMPLETED", timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"200 delayed tasks took {elapsed:.1f}s"
