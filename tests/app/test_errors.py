"""Domain errors' helpers: a long reason shown to a client or in the log, cut where a reader can follow it."""

from __future__ import annotations

import pytest

from app.errors import brief


@pytest.mark.parametrize(
    ("text", "limit", "shown"),
    [
        pytest.param("short enough", 40, "short enough", id="whole"),
        pytest.param("first line\n  second line", 40, "first line", id="first-line"),
        pytest.param("one two three four", 12, "one two…", id="at-a-space"),
        pytest.param("one two, three four", 12, "one two,…", id="punctuation-kept"),
        pytest.param("abcdefghijklmnop", 8, "abcdefg…", id="one-long-word"),
        pytest.param("", 8, "", id="empty"),
        pytest.param("\n\nafter blank lines", 40, "after blank lines", id="first-line-with-text"),
    ],
)
def test_brief_cuts_at_a_word(text, limit, shown):
    assert brief(text, limit) == shown
    assert len(brief(text, limit)) <= limit
