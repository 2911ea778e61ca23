"""Property tests for the SSE decoder: wherever the network splits a stream, the events are the same."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.streaming import SSEDecoder, SSEEvent

FUZZ = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# A line's text: anything but the line breaks SSE splits on.
line_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40)
events = st.lists(
    st.tuples(
        st.lists(line_text, min_size=1, max_size=3),  # data lines
        st.none() | line_text.filter(lambda t: t and not t.startswith(" ")),  # event name
        st.booleans(),  # a comment line (keep-alive) before it
    ),
    max_size=8,
)
newlines = st.sampled_from([b"\n", b"\r\n", b"\r"])


def encode(evs: list, newline: bytes) -> bytes:
    out = b""
    for data_lines, name, comment in evs:
        if comment:
            out += b": keep-alive" + newline
        if name is not None:
            out += b"event: " + name.encode() + newline
        for line in data_lines:
            out += b"data: " + line.encode() + newline
        out += newline
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out = [event for piece in pieces for event in decoder.feed(piece)]
    return out + decoder.close()


@FUZZ
@given(events, newlines, st.lists(st.integers(min_value=0), max_size=12))
def test_events_survive_any_chunk_boundaries(evs, newline, cuts):
    raw = encode(evs, newline)
    expected = [SSEEvent("\n".join(lines), name) for lines, name, _ in evs]
    assert decode([raw]) == expected
    assert decode(split(raw, cuts)) == expected


@FUZZ
@given(events, newlines)
def test_byte_at_a_time_is_the_same_as_all_at_once(evs, newline):
    raw = encode(evs, newline)
    assert decode([raw[i : i + 1] for i in range(len(raw))]) == decode([raw])


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=12))
def test_arbitrary_bytes_never_crash_and_never_depend_on_boundaries(raw, cuts):
    assert decode(split(raw, cuts)) == decode([raw])


def test_a_crlf_split_between_cr_and_lf_is_one_line_break():
    # Found by the properties above: "\r" ending one read and "\n" starting the next was taken
    # for two line breaks, which is an event boundary, so one event came out as two.
    assert decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [SSEEvent("a\nb")]
