"""Word counts and the most frequent words of a text, in plain Python.

An approximation of Conveyor's `text.analyze`: a regular expression
replaces ICU's word segmentation (UAX #29), and NFKC followed by
str.casefold() replaces ICU's NFKC_Casefold. Both agree on ordinary
English text such as the benchmark's. The stop list is the English list in
data/stopwords/english.txt, the one Conveyor compiles in.
"""

import collections
import pathlib
import re
import unicodedata

STOP_WORDS_PATH = pathlib.Path(__file__).resolve().parents[2] / "data" / "stopwords" / "english.txt"
DEFAULT_TOP_N = 5

# Runs of letters, digits and underscores, joined across a single apostrophe,
# period or colon between two such runs, as UAX #29 joins "don't", "3.14"
# and "e.g". Hyphens and other punctuation separate words.
WORD_PATTERN = re.compile(r"\w+(?:['\u2019.:]\w+)*")


def normalize_word(word):
    """Return word in NFKC case-folded form with U+2019 replaced by an apostrophe."""
    return unicodedata.normalize("NFKC", word).casefold().replace("\u2019", "'")


def load_stop_words(path=STOP_WORDS_PATH):
    """Read a stop list with one entry a line and return its normalised entries as a set."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(normalize_word(line.strip()) for line in lines if line.strip())


STOP_WORDS = load_stop_words()


def analyze(text, top_n=DEFAULT_TOP_N):
    """Return word_count, unique_words and top_words of text as a JSON-ready dict.

    top_words ranks words that contain a letter and are not stop words by
    count, highest first, with ties in ascending code-point order.
    """
    words = [normalize_word(match.group()) for match in WORD_PATTERN.finditer(text)]
    counts = collections.Counter(words)

    candidates = [
        (word, count)
        for word, count in counts.items()
        if word not in STOP_WORDS and any(character.isalpha() for character in word)
    ]
    candidates.sort(key=lambda item: (-item[1], item[0]))

    return {
        "word_count": len(words),
        "unique_words": len(counts),
        "top_words": [{"word": word, "count": count} for word, count in candidates[:top_n]],
    }
