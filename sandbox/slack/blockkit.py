"""Block Kit checked against Slack's documented limits, answered the way Slack answers.

Slack rejects a bad payload with `invalid_blocks` and one line per problem in
`response_metadata.messages`, each naming the offending field with a JSON pointer
("[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"). The bot only
learns about a limit when Slack refuses a message in production, so the sandbox refuses the same
payloads here. Limits from the Block Kit reference (blocks, block elements, composition objects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


class Surface(StrEnum):
    MESSAGE = "message"
    HOME = "home"
    MODAL = "modal"


MAX_BLOCKS = {Surface.MESSAGE: 50, Surface.HOME: 100, Surface.MODAL: 100}
MAX_MESSAGE_TEXT = 40_000
MAX_ATTACHMENTS = 100

# Which block types each surface accepts. `input` is for collecting data in modals.
BLOCK_TYPES: dict[Surface, frozenset[str]] = {
    Surface.MESSAGE: frozenset({"section", "header", "divider", "context", "actions", "image", "rich_text"}),
    Surface.HOME: frozenset({"section", "header", "divider", "context", "actions", "image", "rich_text"}),
    Surface.MODAL: frozenset(
        {"section", "header", "divider", "context", "actions", "image", "rich_text", "input"}
    ),
}

SELECTS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
ACTION_ELEMENTS = frozenset(
    {"button", "overflow", "datepicker", "timepicker", "checkboxes", "radio_buttons", *SELECTS}
)
ACCESSORY_ELEMENTS = ACTION_ELEMENTS | {"image"}
INPUT_ELEMENTS = frozenset(
    {
        "plain_text_input",
        "number_input",
        "email_text_input",
        "url_text_input",
        "datepicker",
        "timepicker",
        "checkboxes",
        "radio_buttons",
        *SELECTS,
    }
)


@dataclass
class _Check:
    """Walks one payload, collecting Slack-style errors and the ids that must be unique."""

    surface: Surface
    errors: list[str] = field(default_factory=list)
    action_ids: dict[str, str] = field(default_factory=dict)
    block_ids: dict[str, str] = field(default_factory=dict)

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def string(self, value: object, pointer: str, *, max_len: int, min_len: int = 1) -> bool:
        if not isinstance(value, str):
            self.fail("must be a string", pointer)
            return False
        if len(value) < min_len:
            self.fail(f"must be more than {min_len - 1} characters", pointer)
            return False
        if len(value) > max_len:
            self.fail(f"must be less than {max_len + 1} characters", pointer)
            return False
        return True

    def text(self, obj: object, pointer: str, *, max_len: int, plain_only: bool = False) -> None:
        before = len(self.errors)
        self._text(obj, pointer, max_len=max_len, plain_only=plain_only)
        if len(self.errors) > before and isinstance(obj, dict) and not plain_only:
            # Where either kind of text object is allowed, Slack's schema says "one of": a bad one
            # is first reported as matching neither, then with the specific reason.
            self.errors.insert(before, f"failed to match all allowed schemas [json-pointer:{pointer}]")

    def _text(self, obj: object, pointer: str, *, max_len: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.fail("must provide an object", pointer)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.fail(f"must be one of plain_text, mrkdwn; got {kind!r}", f"{pointer}/type")
            return
        if plain_only and kind != "plain_text":
            self.fail("must be a plain_text text object", f"{pointer}/type")
        if kind == "mrkdwn" and "emoji" in obj:
            self.fail("invalid additional property: emoji", f"{pointer}/emoji")
        if kind == "plain_text" and "verbatim" in obj:
            self.fail("invalid additional property: verbatim", f"{pointer}/verbatim")
        self.string(obj.get("text"), f"{pointer}/text", max_len=max_len)

    def unique_id(self, kind: str, value: object, pointer: str) -> None:
        if not self.string(value, pointer, max_len=255):
            return
        seen = self.action_ids if kind == "action_id" else self.block_ids
        assert isinstance(value, str)
        if value in seen:
            self.fail(f"{kind} {value!r} already exists (first at {seen[value]})", pointer)
        else:
            seen[value] = pointer

    def confirm(self, obj: object, pointer: str) -> None:
        if not isinstance(obj, dict):
            self.fail("must provide an object", pointer)
            return
        self.text(obj.get("title"), f"{pointer}/title", max_len=100, plain_only=True)
        self.text(obj.get("text"), f"{pointer}/text", max_len=300)
        self.text(obj.get("confirm"), f"{pointer}/confirm", max_len=30, plain_only=True)
        self.text(obj.get("deny"), f"{pointer}/deny", max_len=30, plain_only=True)
        if "style" in obj and obj["style"] not in ("primary", "danger"):
            self.fail("must be one of primary, danger", f"{pointer}/style")

    def options(
        self, opts: object, pointer: str, *, max_items: int, min_items: int = 1, plain_only: bool = True
    ) -> None:
        if not isinstance(opts, list):
            self.fail("must provide an array", pointer)
            return
        if len(opts) < min_items:
            self.fail(f"must provide at least {min_items} items", pointer)
        if len(opts) > max_items:
            self.fail(f"no more than {max_items} items allowed", pointer)
        for i, opt in enumerate(opts):
            p = f"{pointer}/{i}"
            if not isinstance(opt, dict):
                self.fail("must provide an object", p)
                continue
            # Menus show plain_text options only; checkboxes and radio buttons may use mrkdwn.
            self.text(opt.get("text"), f"{p}/text", max_len=75, plain_only=plain_only)
            self.string(opt.get("value"), f"{p}/value", max_len=150)

    def element(self, el: object, pointer: str, allowed: frozenset[str]) -> None:
        if not isinstance(el, dict):
            self.fail("must provide an object", pointer)
            return
        kind = el.get("type")
        if kind not in allowed:
            self.fail(f"unsupported type: {kind!r}", f"{pointer}/type")
            return
        if kind == "image":
            self.image_fields(el, pointer)
            return
        if "action_id" in el:
            self.unique_id("action_id", el["action_id"], f"{pointer}/action_id")
        if "confirm" in el:
            self.confirm(el["confirm"], f"{pointer}/confirm")
        if kind == "button":
            self.text(el.get("text"), f"{pointer}/text", max_len=75, plain_only=True)
            if "value" in el:
                self.string(el["value"], f"{pointer}/value", max_len=2000)
            if "url" in el:
                self.string(el["url"], f"{pointer}/url", max_len=3000)
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.fail("must be one of primary, danger", f"{pointer}/style")
            if "accessibility_label" in el:
                self.string(el["accessibility_label"], f"{pointer}/accessibility_label", max_len=75)
        elif kind == "overflow":
            self.options(el.get("options"), f"{pointer}/options", max_items=5, min_items=1)
        elif kind in ("static_select", "multi_static_select"):
            if "option_groups" not in el:
                self.options(el.get("options"), f"{pointer}/options", max_items=100)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(el.get("options"), f"{pointer}/options", max_items=10, plain_only=False)
        if kind in SELECTS and "placeholder" in el:
            self.text(el["placeholder"], f"{pointer}/placeholder", max_len=150, plain_only=True)

    def image_fields(self, el: JSON, pointer: str) -> None:
        if "slack_file" not in el:
            self.string(el.get("image_url"), f"{pointer}/image_url", max_len=3000)
        self.string(el.get("alt_text"), f"{pointer}/alt_text", max_len=2000)

    def block(self, block: object, pointer: str) -> None:
        if not isinstance(block, dict):
            self.fail("must provide an object", pointer)
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES[self.surface]:
            where = f" in a {self.surface.value}" if kind in BLOCK_TYPES[Surface.MODAL] else ""
            self.fail(f"unsupported type: {kind!r}{where}", f"{pointer}/type")
            return
        if "block_id" in block:
            self.unique_id("block_id", block["block_id"], f"{pointer}/block_id")
        check = _BLOCKS.get(str(kind))
        if check is not None:
            check(self, block, pointer)


def _section(c: _Check, b: JSON, p: str) -> None:
    if "text" not in b and "fields" not in b:
        c.fail("must provide text or fields", p)
    if "text" in b:
        c.text(b["text"], f"{p}/text", max_len=3000)
    if "fields" in b:
        fields = b["fields"]
        if not isinstance(fields, list):
            c.fail("must provide an array", f"{p}/fields")
        else:
            if len(fields) > 10:
                c.fail("no more than 10 items allowed", f"{p}/fields")
            for i, f in enumerate(fields):
                c.text(f, f"{p}/fields/{i}", max_len=2000)
    if "accessory" in b:
        c.element(b["accessory"], f"{p}/accessory", ACCESSORY_ELEMENTS)


def _header(c: _Check, b: JSON, p: str) -> None:
    c.text(b.get("text"), f"{p}/text", max_len=150, plain_only=True)


def _context(c: _Check, b: JSON, p: str) -> None:
    els = b.get("elements")
    if not isinstance(els, list) or not els:
        c.fail("must provide at least 1 items", f"{p}/elements")
        return
    if len(els) > 10:
        c.fail("no more than 10 items allowed", f"{p}/elements")
    for i, el in enumerate(els):
        q = f"{p}/elements/{i}"
        if isinstance(el, dict) and el.get("type") == "image":
            c.image_fields(el, q)
        else:
            c.text(el, q, max_len=3000)


def _actions(c: _Check, b: JSON, p: str) -> None:
    els = b.get("elements")
    if not isinstance(els, list) or not els:
        c.fail("must provide at least 1 items", f"{p}/elements")
        return
    if len(els) > 25:
        c.fail("no more than 25 items allowed", f"{p}/elements")
    for i, el in enumerate(els):
        c.element(el, f"{p}/elements/{i}", ACTION_ELEMENTS)


def _image(c: _Check, b: JSON, p: str) -> None:
    c.image_fields(b, p)
    if "title" in b:
        c.text(b["title"], f"{p}/title", max_len=2000, plain_only=True)


def _rich_text(c: _Check, b: JSON, p: str) -> None:
    if not isinstance(b.get("elements"), list):
        c.fail("must provide an array", f"{p}/elements")


def _input(c: _Check, b: JSON, p: str) -> None:
    c.text(b.get("label"), f"{p}/label", max_len=2000, plain_only=True)
    if "hint" in b:
        c.text(b["hint"], f"{p}/hint", max_len=2000, plain_only=True)
    if "element" not in b:
        c.fail("must provide an object", f"{p}/element")
    else:
        c.element(b["element"], f"{p}/element", INPUT_ELEMENTS)


_BLOCKS: dict[str, Callable[[_Check, JSON, str], None]] = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "image": _image,
    "rich_text": _rich_text,
    "input": _input,
}


def validate_blocks(
    blocks: object, surface: Surface = Surface.MESSAGE, *, pointer: str = "/blocks"
) -> list[str]:
    """Every problem Slack would report for `blocks` on `surface`; empty when Slack would accept them."""
    check = _Check(surface)
    if not isinstance(blocks, list):
        check.fail("must provide an array", pointer)
        return check.errors
    limit = MAX_BLOCKS[surface]
    if len(blocks) > limit:
        check.fail(f"no more than {limit} items allowed", pointer)
    for i, block in enumerate(blocks):
        check.block(block, f"{pointer}/{i}")
    return check.errors


VIEW_TYPES = {"home": Surface.HOME, "modal": Surface.MODAL}


def validate_view(view: object) -> list[str]:
    """Problems with a views.publish/open/update payload (limits from the view object reference)."""
    check = _Check(Surface.MODAL)
    if not isinstance(view, dict):
        check.fail("must provide an object", "/view")
        return check.errors
    surface = VIEW_TYPES.get(str(view.get("type")))
    if surface is None:
        check.fail("must be one of home, modal", "/view/type")
        return check.errors
    check = _Check(surface)
    if surface is Surface.MODAL:
        check.text(view.get("title"), "/view/title", max_len=24, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            check.text(view[key], f"/view/{key}", max_len=24, plain_only=True)
    if "private_metadata" in view:
        check.string(view["private_metadata"], "/view/private_metadata", max_len=3000, min_len=0)
    for key in ("callback_id", "external_id"):
        if key in view:
            check.string(view[key], f"/view/{key}", max_len=255)
    return check.errors + validate_blocks(view.get("blocks"), surface, pointer="/view/blocks")
