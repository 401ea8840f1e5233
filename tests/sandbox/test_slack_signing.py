"""The sandbox's own request signing agrees with slack_sdk's SignatureVerifier, forgeries do not."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import SlackActors, SlackRequest, Workspace, demo_seed, signature, signed_headers

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


# Slack bodies are UTF-8 (form-encoded or JSON); slack_sdk decodes them before hashing.
# Signing secrets are hex strings; slack_sdk refuses blank ones (it strips whitespace first).
@given(body=st.text(max_size=512), secret=st.from_regex(r"[0-9a-zA-Z]{1,40}", fullmatch=True))
def test_the_signature_is_the_one_slack_sdk_computes(body: str, secret: str) -> None:
    ts = str(int(time.time()))
    expected = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body.encode())
    assert signature(secret, ts, body.encode()) == expected


def test_slacks_documented_example_signature() -> None:
    # The worked example in Slack's "Verifying requests from Slack".
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert signature(SECRET, 1531420618, body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_signed_headers_verify_and_every_forgery_is_rejected() -> None:
    verifier = SignatureVerifier(SECRET)
    body = b"command=%2Fmigrate&text=next-wave"
    headers = signed_headers(SECRET, body)
    assert verifier.is_valid_request(body, headers)

    request = SlackRequest.signed(
        "http://bot/slack/events", body, "application/x-www-form-urlencoded", SECRET
    )
    assert verifier.is_valid_request(request.body, request.headers)
    tampered = request.tampered()
    assert not verifier.is_valid_request(tampered.body, tampered.headers)
    stale = request.stale()
    assert not verifier.is_valid_request(stale.body, stale.headers)
    wrong = request.with_wrong_secret()
    assert not verifier.is_valid_request(wrong.body, wrong.headers)
    unsigned = request.unsigned()
    assert not verifier.is_valid_request(unsigned.body, unsigned.headers)
    retry = request.redelivered(2, "http_timeout")
    assert verifier.is_valid_request(retry.body, retry.headers)
    assert (retry.headers["X-Slack-Retry-Num"], retry.headers["X-Slack-Retry-Reason"]) == (
        "2",
        "http_timeout",
    )


def test_actors_sign_with_the_apps_secret_and_point_back_at_the_emulator() -> None:
    ws = Workspace(demo_seed())
    ws.base_url = "http://127.0.0.1:9"
    actors = SlackActors(ws, "http://127.0.0.1:3000/slack/events")
    request = actors["alice"].build_command("/migrate", "status", channel="eks-migration")
    assert SignatureVerifier(ws.signing_secret).is_valid_request(request.body, request.headers)
    assert request.interaction is not None
    assert request.interaction.response_url.startswith("http://127.0.0.1:9/hooks/T0SANDBOX/")
    assert b"user_name=alice" in request.body
    assert b"channel_id=C0MIGRATE" in request.body
