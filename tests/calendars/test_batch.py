"""The multipart batch format, on its own."""

from __future__ import annotations

import pytest

from cpsync.calendars.batch import BatchFormatError, InnerRequest, decode_batch, encode_batch


def test_encoded_batch_has_one_application_http_part_per_call() -> None:
    content_type, body = encode_batch(
        [
            InnerRequest("0", "POST", "/calendar/v3/calendars/primary/events", {"id": "abcde"}),
            InnerRequest("1", "DELETE", "/calendar/v3/calendars/primary/events/abcde"),
        ]
    )
    boundary = content_type.split("boundary=")[1]

    assert content_type.startswith("multipart/mixed; boundary=")
    assert body.count(f"--{boundary}\r\n".encode()) == 2
    assert body.endswith(f"--{boundary}--\r\n".encode())
    assert b"Content-ID: <0>" in body
    assert b"Content-Type: application/http" in body
    assert b"POST /calendar/v3/calendars/primary/events HTTP/1.1\r\n" in body
    assert b'{"id":"abcde"}' in body


def test_decoding_matches_answers_by_content_id_not_position() -> None:
    body = (
        b"--batch_x\r\nContent-Type: application/http\r\nContent-ID: <response-1>\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n\r\n"
        b"--batch_x\r\nContent-Type: application/http\r\nContent-ID: <response-0>\r\n\r\n"
        b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n"
        b'{"error": {"code": 409}}\r\n'
        b"--batch_x--\r\n"
    )

    answers = decode_batch("multipart/mixed; boundary=batch_x", body)

    assert answers["0"].status == 409
    assert answers["0"].json() == {"error": {"code": 409}}
    assert answers["1"].status == 204
    assert answers["1"].body == b""


def test_decoding_without_boundary_is_an_error() -> None:
    with pytest.raises(BatchFormatError):
        decode_batch("multipart/mixed", b"")
