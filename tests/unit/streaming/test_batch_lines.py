"""streaming.batch.newline_terminated: the sink's COPY input, joined in Arrow's buffers."""

import pyarrow as pa
import pytest

from streaming.batch import newline_terminated


def _python(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode() if rows else b""


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_the_block_is_every_row_newline_ended_as_python_would_join_them(kind):
    rows = ['a,"b ""quoted""",1', "ümlaut,€,2", "", "last,row,3"]
    chunked = pa.chunked_array([pa.array(rows[:2], kind), pa.array(rows[2:], kind)])
    assert newline_terminated(chunked) == _python(rows)
    sliced = pa.chunked_array([pa.array(["skip", *rows], kind).slice(1)])  # an offset into the buffers
    assert newline_terminated(sliced) == _python(rows)
    assert newline_terminated(pa.chunked_array([], kind)) == b""


def test_a_row_without_a_line_is_refused_not_dropped():
    with pytest.raises(ValueError, match="1 of the batch's 2 sink rows have no CSV line"):
        newline_terminated(pa.chunked_array([pa.array(["a", None])]))
