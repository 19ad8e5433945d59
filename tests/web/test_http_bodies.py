"""Strict input, one error shape: request bodies must be JSON of the documented fields
(content type, lone surrogates, duplicate and unknown fields), refused with the error
envelope before anything reaches the app server."""

from __future__ import annotations

import pytest_twisted

from shillings_proto import pb
from tests.web.envelopes import JSON, assert_envelope, token

BODY_POSTS = {
    "/v1/signup": b'{"first_name":"A","last_name":"L","email":"a@b.co","phone":"+15550001111",'
    b'"password":"12345678"}',
    "/v1/login": b'{"email":"a@b.co","password":"12345678"}',
    "/v1/topup": b'{"amount":"1.00"}',
    "/v1/pay": b'{"receiver_email":"r@x.co","amount":"1.00"}',
}


def app_commands(fake_app):
    return [r.command for r in fake_app.factory.received if r.command not in (pb.HLT, pb.HEL)]


@pytest_twisted.ensureDeferred
async def test_bodies_must_be_application_json(edge_web, fake_app):
    for path, data in BODY_POSTS.items():
        for ctype in (
            "text/plain",
            "application/x-www-form-urlencoded",
            None,
            "application/json; charset=latin-1",
        ):
            headers = {"Content-Type": ctype} if ctype is not None else {}
            answer = await edge_web.client.request(
                "POST", path, data=data, headers=headers, token=token(sub="5")
            )
            body = assert_envelope(answer, 415, "unsupported_media_type")
            assert (
                "application/json" in body["status"]["message"]
                or "utf-8" in body["status"]["message"]
            )
    assert app_commands(fake_app) == []
    answer = await edge_web.client.request(
        "POST",
        "/v1/topup",
        data=BODY_POSTS["/v1/topup"],
        headers={"Content-Type": "application/json; charset=UTF-8"},
        token=token(sub="5"),
    )
    assert answer.code == 500  # reached the fake app, which answers everything with 500
    assert app_commands(fake_app) == [pb.TPU]


@pytest_twisted.ensureDeferred
async def test_compressed_bodies_are_415(edge_web, fake_app):
    """Before, a gzip body was 400 "not valid JSON", as if the client had sent bad JSON."""
    for path, data in BODY_POSTS.items():
        for encoding in ("gzip", "deflate, gzip", "br"):
            answer = await edge_web.client.request(
                "POST",
                path,
                data=data,
                headers={"Content-Type": "application/json", "Content-Encoding": encoding},
                token=token(sub="5"),
            )
            body = assert_envelope(answer, 415, "unsupported_media_type")
            assert "Content-Encoding" in body["status"]["message"]
    assert app_commands(fake_app) == []
    answer = await edge_web.client.request(
        "POST",
        "/v1/topup",
        data=BODY_POSTS["/v1/topup"],
        headers={"Content-Type": "application/json", "Content-Encoding": "identity"},
        token=token(sub="5"),
    )
    assert answer.code == 500  # reached the fake app, which answers everything with 500


@pytest_twisted.ensureDeferred
async def test_lone_surrogate_is_400_never_500(edge_web, fake_app):
    for path, data in BODY_POSTS.items():
        text = data.decode()
        for field in ("a@b.co", "r@x.co", '"L"', "12345678"):
            if field in text:
                bad = text.replace(field, field[:-1] + "\\ud800" + field[-1:], 1).encode()
                answer = await edge_web.client.request(
                    "POST", path, data=bad, headers=JSON, token=token(sub="5")
                )
                body = assert_envelope(answer, 400, "invalid_request")
                assert "surrogate" in body["status"]["message"]
    assert app_commands(fake_app) == []


@pytest_twisted.ensureDeferred
async def test_duplicate_and_unknown_fields_never_reach_the_app(edge_web, fake_app):
    cases = [
        ("/v1/topup", b'{"amount":"1.00","amount":"2.00"}', "parameter_duplicated", '"amount"'),
        ("/v1/topup", b'{"amount":"1.00","fee":"-5"}', "parameter_unknown", '"fee"'),
        (
            "/v1/pay",
            b'{"receiver_email":"r@x.co","amount":"1.00","fee":"-5"}',
            "parameter_unknown",
            '"fee"',
        ),
        (
            "/v1/login",
            b'{"email":"a@b.co","password":"x","email":"b@b.co"}',
            "parameter_duplicated",
            '"email"',
        ),
    ]
    for path, data, reason, field in cases:
        answer = await edge_web.client.request(
            "POST", path, data=data, headers=JSON, token=token(sub="5")
        )
        body = assert_envelope(answer, 400, reason)
        assert field in body["status"]["message"]
    assert app_commands(fake_app) == []
