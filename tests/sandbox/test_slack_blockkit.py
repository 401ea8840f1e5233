"""Block Kit limits as Slack documents them, checked without a server."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.slack import Surface, validate_blocks, validate_view


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def button(action_id: str = "a", text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": plain(text), **extra}


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def test_a_well_formed_request_message_has_no_problems() -> None:
    blocks = [
        {"type": "header", "text": plain("Wave 2")},
        {
            "type": "section",
            "text": md("*12 nodes*"),
            "fields": [md("a"), md("b")],
            "accessory": button("more"),
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [
                md("plan `abc123`"),
                {"type": "image", "image_url": "https://x/i.png", "alt_text": "i"},
            ],
        },
        actions(button("approve", style="primary"), button("deny", style="danger")),
        {
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "x"}]}],
        },
    ]
    assert validate_blocks(blocks) == []


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([{"type": "divider"}] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
        (
            [{"type": "section", "text": md("x" * 3001)}],
            "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "section", "text": md("")}],
            "must be more than 0 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "header", "text": plain("x" * 151)}],
            "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "header", "text": md("x")}],
            "must be a plain_text text object [json-pointer:/blocks/0/text/type]",
        ),
        (
            [{"type": "section", "fields": [md("f")] * 11}],
            "no more than 10 items allowed [json-pointer:/blocks/0/fields]",
        ),
        (
            [{"type": "section", "fields": [md("x" * 2001)]}],
            "must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]",
        ),
        ([{"type": "section"}], "must provide text or fields [json-pointer:/blocks/0]"),
        (
            [actions(button(text="x" * 76))],
            "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        ),
        (
            [actions(button(value="x" * 2001))],
            "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
        ),
        (
            [actions(button(action_id="x" * 256))],
            "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
        ),
        (
            [actions(*[button(f"b{i}") for i in range(26)])],
            "no more than 25 items allowed [json-pointer:/blocks/0/elements]",
        ),
        (
            [{"type": "context", "elements": [md("c")] * 11}],
            "no more than 10 items allowed [json-pointer:/blocks/0/elements]",
        ),
        ([{"type": "carousel"}], "unsupported type: 'carousel' [json-pointer:/blocks/0/type]"),
        (
            [{"type": "input", "label": plain("x"), "element": {"type": "plain_text_input"}}],
            "unsupported type: 'input' in a message [json-pointer:/blocks/0/type]",
        ),
        (
            [
                actions(
                    button(
                        confirm={
                            "title": plain("t"),
                            "text": md("x"),
                            "confirm": md("ok"),
                            "deny": plain("no"),
                        }
                    )
                )
            ],
            "must be a plain_text text object [json-pointer:/blocks/0/elements/0/confirm/confirm/type]",
        ),
        (
            [actions(button(style="purple"))],
            "must be one of primary, danger [json-pointer:/blocks/0/elements/0/style]",
        ),
        (
            [{"type": "header", "text": {"type": "mrkdwn", "text": "x", "emoji": True}}],
            "invalid additional property: emoji [json-pointer:/blocks/0/text/emoji]",
        ),
    ],
)
def test_each_documented_limit_is_reported_with_its_json_pointer(
    blocks: list[dict[str, Any]], expected: str
) -> None:
    assert expected in validate_blocks(blocks)


def test_ids_must_be_unique_within_one_message() -> None:
    blocks = [
        {"type": "section", "block_id": "b", "text": md("x"), "accessory": button("approve")},
        {"type": "actions", "block_id": "b", "elements": [button("approve")]},
    ]
    problems = validate_blocks(blocks)
    assert any("block_id 'b' already exists" in p and "/blocks/1/block_id" in p for p in problems)
    assert any(
        "action_id 'approve' already exists" in p and "/blocks/1/elements/0/action_id" in p for p in problems
    )


def test_home_and_modals_allow_a_hundred_blocks_and_modals_take_inputs() -> None:
    assert validate_blocks([{"type": "divider"}] * 100, Surface.HOME) == []
    assert validate_blocks([{"type": "divider"}] * 101, Surface.HOME) == [
        "no more than 100 items allowed [json-pointer:/blocks]"
    ]
    modal = {
        "type": "modal",
        "title": plain("Approve wave"),
        "submit": plain("Approve"),
        "blocks": [
            {
                "type": "input",
                "label": plain("Why?"),
                "element": {"type": "plain_text_input", "action_id": "why"},
            }
        ],
    }
    assert validate_view(modal) == []
    assert validate_view({**modal, "title": plain("x" * 25)}) == [
        "must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    assert validate_view({"type": "sheet", "blocks": []}) == [
        "must be one of home, modal [json-pointer:/view/type]"
    ]


def test_a_too_long_section_reads_exactly_as_slack_reports_it() -> None:
    # Observed from slack.com: the "one of" text object fails first, then the length.
    assert validate_blocks([{"type": "section", "text": md("x" * 3001)}]) == [
        "failed to match all allowed schemas [json-pointer:/blocks/0/text]",
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
    ]
