"""Discord's component rules: message components, modals, and what a member can click or submit.

Messages: up to 5 action rows (legacy layout), each holding up to 5 buttons or exactly one select;
custom ids 1-100 characters and unique within the message. Components V2 messages (flag ``1 << 15``)
are checked more lightly: at most 40 components in all, with the same rules for the buttons and
selects inside them. Modals (interaction callback type 9): custom id 1-100, title 1-45, 1-5 top-level
components, either the classic action rows holding one text input each or Labels (type 18) wrapping a
text input or a string select, plus Text Displays (type 10). Violations are Discord's 400 / 50035 with
its nested ``errors`` object; the ``errors`` codes for component rules Discord documents only by prose
are the double's best knowledge (tests should assert the status, the code 50035 and the error path).

Discord assigns every component without an ``id`` the next free integer, depth first; the double does
the same so that a modal submission carries the ids Discord would send.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import invalid_form_body


class ComponentType:
    """Component type numbers."""

    ACTION_ROW = 1
    BUTTON = 2
    STRING_SELECT = 3
    TEXT_INPUT = 4
    USER_SELECT = 5
    ROLE_SELECT = 6
    MENTIONABLE_SELECT = 7
    CHANNEL_SELECT = 8
    SECTION = 9
    TEXT_DISPLAY = 10
    THUMBNAIL = 11
    MEDIA_GALLERY = 12
    FILE = 13
    SEPARATOR = 14
    CONTAINER = 17
    LABEL = 18
    FILE_UPLOAD = 19

    SELECTS = frozenset({STRING_SELECT, USER_SELECT, ROLE_SELECT, MENTIONABLE_SELECT, CHANNEL_SELECT})
    # What may sit in a message's action row.
    IN_MESSAGE_ROW = frozenset({BUTTON, *SELECTS})


class ButtonStyle:
    """Button style numbers."""

    PRIMARY = 1
    SECONDARY = 2
    SUCCESS = 3
    DANGER = 4
    LINK = 5
    PREMIUM = 6

    ALL = frozenset({PRIMARY, SECONDARY, SUCCESS, DANGER, LINK, PREMIUM})


class TextInputStyle:
    """Text input style numbers."""

    SHORT = 1
    PARAGRAPH = 2


MAX_ACTION_ROWS = 5
MAX_ROW_WIDTH = 5
MAX_V2_COMPONENTS = 40
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
BUTTON_URL_MAX = 512
SELECT_OPTIONS_MAX = 25
SELECT_VALUES_MAX = 25
SELECT_OPTION_TEXT_MAX = 100
SELECT_PLACEHOLDER_MAX = 150
MODAL_TITLE_MAX = 45
MODAL_COMPONENTS_MAX = 5
LABEL_TEXT_MAX = 45
LABEL_DESCRIPTION_MAX = 100
TEXT_INPUT_LENGTH_MAX = 4000
TEXT_INPUT_PLACEHOLDER_MAX = 100
TEXT_DISPLAY_MAX = 4000

Path = tuple[str | int, ...]


class ModelledOnlyPartlyError(NotImplementedError):
    """A valid Discord payload the double does not model (it answers 400 and keeps the traceback)."""


class _Errors:
    """Discord's nested ``errors`` object, built leaf by leaf."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: Path, code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self.tree)


def _text(errors: _Errors, path: Path, value: Any, low: int, high: int, *, required: bool) -> str | None:
    """Check a string field's presence and length; return it if it is a string."""
    if value is None:
        if required:
            errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return None
    if not isinstance(value, str):
        errors.add(path, "STRING_TYPE_CONVERT", "Could not interpret value as string.")
        return None
    if not low <= len(value) <= high:
        if low == 0:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
        else:
            errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")
    return value


def _integer(errors: _Errors, path: Path, value: Any, low: int, high: int) -> int | None:
    """Check an optional integer field's range; return it if it is a valid integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
        return None
    if value < low:
        errors.add(path, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}.")
        return None
    if value > high:
        errors.add(path, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")
        return None
    return value


def _type_choices(errors: _Errors, path: Path, allowed: Sequence[int]) -> None:
    listed = ", ".join(str(value) for value in allowed)
    errors.add((*path, "type"), "UNION_TYPE_CHOICES", f'Value of field "type" must be one of ({listed},).')


class _CustomIds:
    """Custom ids seen so far in one message or modal: Discord refuses duplicates."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def check(self, errors: _Errors, path: Path, component: Mapping[str, Any], *, required: bool) -> None:
        custom_id = _text(
            errors, (*path, "custom_id"), component.get("custom_id"), 1, CUSTOM_ID_MAX, required=required
        )
        if custom_id is None:
            return
        if custom_id in self.seen:
            errors.add(
                (*path, "custom_id"),
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        self.seen.add(custom_id)


# ---------------------------------------------------------------------- message components


def _button_errors(errors: _Errors, path: Path, button: Mapping[str, Any], ids: _CustomIds) -> None:
    style = button.get("style")
    if style not in ButtonStyle.ALL:
        errors.add((*path, "style"), "BASE_TYPE_CHOICES", f"Value must be one of {sorted(ButtonStyle.ALL)}.")
        return
    _text(errors, (*path, "label"), button.get("label"), 0, BUTTON_LABEL_MAX, required=False)
    if style == ButtonStyle.LINK:
        _text(errors, (*path, "url"), button.get("url"), 1, BUTTON_URL_MAX, required=True)
        if button.get("custom_id") is not None:
            errors.add(
                (*path, "custom_id"),
                "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                "Link buttons cannot have a custom_id",
            )
    elif style == ButtonStyle.PREMIUM:
        if button.get("sku_id") is None:
            errors.add((*path, "sku_id"), "BASE_TYPE_REQUIRED", "This field is required")
        for forbidden in ("custom_id", "label", "url", "emoji"):
            if button.get(forbidden) is not None:
                errors.add(
                    (*path, forbidden),
                    "BUTTON_COMPONENT_PREMIUM_FIELD_NOT_ALLOWED",
                    f"Premium buttons cannot have a {forbidden}",
                )
    else:
        ids.check(errors, path, button, required=True)
        if button.get("url") is not None:
            errors.add((*path, "url"), "BUTTON_COMPONENT_URL_NOT_ALLOWED", "Only link buttons can have a url")


def _select_errors(
    errors: _Errors, path: Path, select: Mapping[str, Any], ids: _CustomIds, *, in_modal: bool
) -> None:
    ids.check(errors, path, select, required=True)
    _text(
        errors, (*path, "placeholder"), select.get("placeholder"), 0, SELECT_PLACEHOLDER_MAX, required=False
    )
    min_values = _integer(errors, (*path, "min_values"), select.get("min_values"), 0, SELECT_VALUES_MAX)
    max_values = _integer(errors, (*path, "max_values"), select.get("max_values"), 1, SELECT_VALUES_MAX)
    low = 1 if min_values is None else min_values
    high = 1 if max_values is None else max_values
    if low > high:
        errors.add(
            (*path, "min_values"),
            "SELECT_COMPONENT_MIN_VALUES_GREATER_THAN_MAX",
            "min_values must be less than or equal to max_values",
        )
    if in_modal and select.get("disabled"):
        errors.add(
            (*path, "disabled"), "COMPONENT_DISABLED_NOT_ALLOWED", "Components in modals cannot be disabled"
        )
    if select.get("type") != ComponentType.STRING_SELECT:
        return
    options = select.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= SELECT_OPTIONS_MAX:
        errors.add(
            (*path, "options"),
            "BASE_TYPE_BAD_LENGTH",
            f"Must be between 1 and {SELECT_OPTIONS_MAX} in length.",
        )
        return
    values: set[str] = set()
    for index, option in enumerate(options):
        option_path = (*path, "options", index)
        _text(errors, (*option_path, "label"), option.get("label"), 1, SELECT_OPTION_TEXT_MAX, required=True)
        value = _text(
            errors, (*option_path, "value"), option.get("value"), 1, SELECT_OPTION_TEXT_MAX, required=True
        )
        _text(
            errors,
            (*option_path, "description"),
            option.get("description"),
            0,
            SELECT_OPTION_TEXT_MAX,
            required=False,
        )
        if value is not None and value in values:
            errors.add(
                (*option_path, "value"),
                "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                "Select option values must be unique",
            )
        if value is not None:
            values.add(value)
    if high > len(options):
        errors.add(
            (*path, "max_values"),
            "SELECT_COMPONENT_MAX_VALUES_EXCEEDS_OPTIONS",
            "max_values must be less than or equal to the number of options",
        )


def _row_errors(errors: _Errors, path: Path, row: Mapping[str, Any], ids: _CustomIds) -> None:
    children = row.get("components")
    if not isinstance(children, list) or not 1 <= len(children) <= MAX_ROW_WIDTH:
        errors.add(
            (*path, "components"), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_ROW_WIDTH} in length."
        )
        return
    for index, child in enumerate(children):
        child_path = (*path, "components", index)
        child_type = child.get("type") if isinstance(child, Mapping) else None
        if child_type == ComponentType.BUTTON:
            _button_errors(errors, child_path, child, ids)
        elif child_type in ComponentType.SELECTS:
            _select_errors(errors, child_path, child, ids, in_modal=False)
        else:
            _type_choices(errors, child_path, sorted(ComponentType.IN_MESSAGE_ROW))
    has_select = any(isinstance(c, Mapping) and c.get("type") in ComponentType.SELECTS for c in children)
    if has_select and len(children) > 1:
        # A select takes a row's whole width.
        errors.add(
            (*path, "components"),
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
            "The specified component exceeds the maximum width",
        )


def _count(components: Sequence[Any]) -> int:
    return sum(1 for _ in _walk(components))


def _v2_errors(errors: _Errors, path: Path, components: Sequence[Any], ids: _CustomIds) -> None:
    for index, component in enumerate(components):
        component_path = (*path, index)
        if not isinstance(component, Mapping):
            _type_choices(errors, component_path, [ComponentType.ACTION_ROW])
            continue
        component_type = component.get("type")
        if component_type == ComponentType.ACTION_ROW:
            _row_errors(errors, component_path, component, ids)
        elif component_type == ComponentType.SECTION:
            accessory = component.get("accessory")
            if isinstance(accessory, Mapping) and accessory.get("type") == ComponentType.BUTTON:
                _button_errors(errors, (*component_path, "accessory"), accessory, ids)
        elif component_type == ComponentType.CONTAINER:
            _v2_errors(errors, (*component_path, "components"), component.get("components") or [], ids)
        elif component_type == ComponentType.TEXT_DISPLAY:
            _text(
                errors,
                (*component_path, "content"),
                component.get("content"),
                1,
                TEXT_DISPLAY_MAX,
                required=True,
            )


def message_component_errors(components: Any, *, v2: bool) -> dict[str, Any]:
    """Discord's ``errors`` for a message's ``components`` (empty when they are valid)."""
    errors = _Errors()
    path: Path = ("components",)
    if not isinstance(components, list):
        errors.add(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return errors.tree
    ids = _CustomIds()
    if v2:
        if _count(components) > MAX_V2_COMPONENTS:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in length.")
        _v2_errors(errors, path, components, ids)
        return errors.tree
    if len(components) > MAX_ACTION_ROWS:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length.")
        return errors.tree
    for index, row in enumerate(components):
        if not isinstance(row, Mapping) or row.get("type") != ComponentType.ACTION_ROW:
            _type_choices(errors, (*path, index), [ComponentType.ACTION_ROW])
            continue
        _row_errors(errors, (*path, index), row, ids)
    return errors.tree


# ---------------------------------------------------------------------- ids and lookup


def _children(component: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The components directly inside ``component`` (rows, containers, sections, labels)."""
    children = list(component.get("components") or [])
    for key in ("accessory", "component"):
        child = component.get(key)
        if isinstance(child, dict):
            children.append(child)
    return [child for child in children if isinstance(child, dict)]


def _walk(components: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Every component, depth first, parents before children."""
    for component in components:
        if isinstance(component, dict):
            yield component
            yield from _walk(_children(component))


def with_component_ids(components: Sequence[Any]) -> list[Any]:
    """A copy of ``components`` where each component without an ``id`` (or with 0) has the next free one.

    Discord numbers them depth first and skips ids a component already uses.
    """
    copied = copy.deepcopy(list(components))
    used = {c["id"] for c in _walk(copied) if isinstance(c.get("id"), int) and c["id"] > 0}
    next_id = 1
    for component in _walk(copied):
        if isinstance(component.get("id"), int) and component["id"] > 0:
            continue
        while next_id in used:
            next_id += 1
        component["id"] = next_id
        used.add(next_id)
    return copied


def find_component(components: Sequence[Any], custom_id: str) -> dict[str, Any] | None:
    """The interactive component with ``custom_id`` anywhere in ``components``, if any."""
    return next((c for c in _walk(components) if c.get("custom_id") == custom_id), None)


def clickable_custom_ids(components: Sequence[Any]) -> list[str]:
    """Custom ids of the enabled buttons and selects a member could use."""
    return [
        c["custom_id"]
        for c in _walk(components)
        if c.get("custom_id") is not None
        and c.get("type") in ComponentType.IN_MESSAGE_ROW
        and not c.get("disabled")
    ]


def component_interaction_data(
    message_components: Sequence[Any],
    custom_id: str,
    values: Sequence[str] | None,
    component_type: int | None,
) -> dict[str, Any]:
    """``data`` of the component interaction a member's click or pick sends; ValueError if impossible.

    A Discord client shows only the message's current components: a custom id that is not there, a
    disabled one, or select values outside the options cannot be sent.
    """
    component = find_component(message_components, custom_id)
    if component is None or component.get("type") not in ComponentType.IN_MESSAGE_ROW:
        known = clickable_custom_ids(message_components)
        raise ValueError(f"the message has no button or select {custom_id!r} (clickable: {known})")
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} is disabled: a member cannot use it")
    actual_type = int(component["type"])
    if component_type is not None and component_type != actual_type:
        raise ValueError(f"component {custom_id!r} is of type {actual_type}, not {component_type}")
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": actual_type}
    if actual_type == ComponentType.BUTTON:
        if values is not None:
            raise ValueError(f"{custom_id!r} is a button: it takes no values")
        return data
    if actual_type != ComponentType.STRING_SELECT:
        raise ModelledOnlyPartlyError("the double sends string selects only, not user/role/channel selects")
    if values is None:
        raise ValueError(f"{custom_id!r} is a select: pass the values picked")
    data["values"] = _checked_select_values(component, list(values), custom_id)
    return data


def _checked_select_values(select: Mapping[str, Any], values: list[str], custom_id: str) -> list[str]:
    options = [option["value"] for option in select.get("options") or []]
    unknown = [value for value in values if value not in options]
    if unknown:
        raise ValueError(f"{custom_id!r}: {unknown} are not among the options {options}")
    if len(set(values)) != len(values):
        raise ValueError(f"{custom_id!r}: an option can be picked only once")
    low = select.get("min_values", 1)
    high = select.get("max_values", 1)
    if not low <= len(values) <= high:
        raise ValueError(f"{custom_id!r}: pick between {low} and {high} options, not {len(values)}")
    return values


# ---------------------------------------------------------------------- modals


@dataclass(frozen=True)
class ModalField:
    """One input of an opened modal: a text input or a string select.

    ``in_label`` tells the form: True for a Label (type 18) wrapper, False for a classic action row.
    ``wrapper_id``/``id`` are the component ids Discord assigned to the wrapper and to the input.
    """

    custom_id: str
    type: int
    in_label: bool
    label: str | None
    required: bool
    id: int
    wrapper_id: int
    style: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    default: str | None = None
    options: tuple[str, ...] = ()
    default_values: tuple[str, ...] = ()
    min_values: int = 1
    max_values: int = 1

    @property
    def is_text_input(self) -> bool:
        """Whether this is a text input (else a string select)."""
        return self.type == ComponentType.TEXT_INPUT


@dataclass(frozen=True)
class OpenedModal:
    """A modal the bot opened (callback type 9), as Discord accepted it.

    ``components`` is the modal's layout with the ids Discord assigned; ``fields`` its inputs in order.
    """

    custom_id: str
    title: str
    components: tuple[dict[str, Any], ...]
    fields: tuple[ModalField, ...]

    def field(self, custom_id: str) -> ModalField:
        """The input with ``custom_id``."""
        for modal_field in self.fields:
            if modal_field.custom_id == custom_id:
                return modal_field
        raise KeyError(f"the modal has no input {custom_id!r} (inputs: {[f.custom_id for f in self.fields]})")

    @property
    def uses_labels(self) -> bool:
        """Whether any input is wrapped in a Label (the newer form)."""
        return any(modal_field.in_label for modal_field in self.fields)


def _text_input_errors(
    errors: _Errors, path: Path, text_input: Mapping[str, Any], ids: _CustomIds, *, in_label: bool
) -> None:
    ids.check(errors, path, text_input, required=True)
    if text_input.get("style") not in (TextInputStyle.SHORT, TextInputStyle.PARAGRAPH):
        errors.add((*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2).")
    # The classic form needs the input's own label; inside a Label it is deprecated and optional.
    _text(errors, (*path, "label"), text_input.get("label"), 1, LABEL_TEXT_MAX, required=not in_label)
    low = _integer(errors, (*path, "min_length"), text_input.get("min_length"), 0, TEXT_INPUT_LENGTH_MAX)
    high = _integer(errors, (*path, "max_length"), text_input.get("max_length"), 1, TEXT_INPUT_LENGTH_MAX)
    if low is not None and high is not None and low > high:
        errors.add(
            (*path, "min_length"),
            "TEXT_INPUT_MIN_LENGTH_GREATER_THAN_MAX",
            "min_length must be less than or equal to max_length",
        )
    _text(errors, (*path, "value"), text_input.get("value"), 0, TEXT_INPUT_LENGTH_MAX, required=False)
    _text(
        errors,
        (*path, "placeholder"),
        text_input.get("placeholder"),
        0,
        TEXT_INPUT_PLACEHOLDER_MAX,
        required=False,
    )


_LABEL_CHILDREN_MODELLED = (ComponentType.TEXT_INPUT, ComponentType.STRING_SELECT)
# Label children Discord accepts that the double cannot submit (user/role/mentionable/channel selects,
# file uploads, radio groups, checkbox groups, checkboxes).
_LABEL_CHILDREN_UNMODELLED = frozenset({5, 6, 7, 8, ComponentType.FILE_UPLOAD, 21, 22, 23})


def _modal_component_errors(errors: _Errors, path: Path, component: Any, ids: _CustomIds) -> None:
    top_level = (ComponentType.ACTION_ROW, ComponentType.TEXT_DISPLAY, ComponentType.LABEL)
    component_type = component.get("type") if isinstance(component, Mapping) else None
    if component_type == ComponentType.ACTION_ROW:
        children = component.get("components")
        if not isinstance(children, list) or len(children) != 1:
            errors.add((*path, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 1 in length.")
            return
        child = children[0]
        if not isinstance(child, Mapping) or child.get("type") != ComponentType.TEXT_INPUT:
            _type_choices(errors, (*path, "components", 0), [ComponentType.TEXT_INPUT])
            return
        _text_input_errors(errors, (*path, "components", 0), child, ids, in_label=False)
    elif component_type == ComponentType.LABEL:
        _text(errors, (*path, "label"), component.get("label"), 1, LABEL_TEXT_MAX, required=True)
        _text(
            errors,
            (*path, "description"),
            component.get("description"),
            0,
            LABEL_DESCRIPTION_MAX,
            required=False,
        )
        child = component.get("component")
        child_type = child.get("type") if isinstance(child, Mapping) else None
        if child_type == ComponentType.TEXT_INPUT:
            _text_input_errors(errors, (*path, "component"), child, ids, in_label=True)
        elif child_type == ComponentType.STRING_SELECT:
            _select_errors(errors, (*path, "component"), child, ids, in_modal=True)
        elif child_type in _LABEL_CHILDREN_UNMODELLED:
            raise ModelledOnlyPartlyError(
                f"the double models text inputs and string selects in Labels, not type {child_type}"
            )
        else:
            _type_choices(
                errors, (*path, "component"), [*_LABEL_CHILDREN_MODELLED, *sorted(_LABEL_CHILDREN_UNMODELLED)]
            )
    elif component_type == ComponentType.TEXT_DISPLAY:
        _text(errors, (*path, "content"), component.get("content"), 1, TEXT_DISPLAY_MAX, required=True)
    else:
        _type_choices(errors, path, top_level)


def _modal_field(wrapper: Mapping[str, Any]) -> ModalField | None:
    """The input inside a (valid, id-numbered) top-level modal component, if it holds one."""
    in_label = wrapper["type"] == ComponentType.LABEL
    if in_label:
        inner = wrapper["component"]
    elif wrapper["type"] == ComponentType.ACTION_ROW:
        inner = wrapper["components"][0]
    else:
        return None
    common: dict[str, Any] = {
        "custom_id": inner["custom_id"],
        "type": inner["type"],
        "in_label": in_label,
        "label": wrapper["label"] if in_label else inner.get("label"),
        "required": inner.get("required", True) is not False,
        "id": inner["id"],
        "wrapper_id": wrapper["id"],
    }
    if inner["type"] == ComponentType.TEXT_INPUT:
        return ModalField(
            **common,
            style=inner["style"],
            min_length=inner.get("min_length"),
            max_length=inner.get("max_length"),
            default=inner.get("value"),
        )
    options = inner.get("options") or []
    return ModalField(
        **common,
        options=tuple(option["value"] for option in options),
        default_values=tuple(option["value"] for option in options if option.get("default")),
        min_values=inner.get("min_values", 1),
        max_values=inner.get("max_values", 1),
    )


def validate_modal(data: Mapping[str, Any]) -> OpenedModal:
    """The modal of a type-9 callback's ``data``, or Discord's 50035 (errors under ``data``)."""
    errors = _Errors()
    base: Path = ("data",)
    custom_id = _text(errors, (*base, "custom_id"), data.get("custom_id"), 1, CUSTOM_ID_MAX, required=True)
    title = _text(errors, (*base, "title"), data.get("title"), 1, MODAL_TITLE_MAX, required=True)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= MODAL_COMPONENTS_MAX:
        errors.add(
            (*base, "components"),
            "BASE_TYPE_BAD_LENGTH",
            f"Must be between 1 and {MODAL_COMPONENTS_MAX} in length.",
        )
    else:
        ids = _CustomIds()
        for index, component in enumerate(components):
            _modal_component_errors(errors, (*base, "components", index), component, ids)
    if errors or custom_id is None or title is None or not isinstance(components, list):
        raise invalid_form_body(errors.tree)
    numbered = with_component_ids(components)
    fields = tuple(field for field in map(_modal_field, numbered) if field is not None)
    return OpenedModal(custom_id=custom_id, title=title, components=tuple(numbered), fields=fields)


def _submitted_text(modal_field: ModalField, value: Any) -> str:
    name = modal_field.custom_id
    if value is None:
        value = modal_field.default or ""
    if not isinstance(value, str):
        raise TypeError(f"{name!r} is a text input: its value is a str, not {value!r}")
    if not value:
        if modal_field.required:
            raise ValueError(f"{name!r} is required: Discord's client will not submit it empty")
        return value
    low = modal_field.min_length or 0
    high = modal_field.max_length or TEXT_INPUT_LENGTH_MAX
    if not low <= len(value) <= high:
        raise ValueError(f"{name!r}: length {len(value)} is outside [{low}, {high}]")
    return value


def _submitted_values(modal_field: ModalField, value: Any) -> list[str]:
    name = modal_field.custom_id
    if value is None:
        value = list(modal_field.default_values)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name!r} is a select: its value is a list of option values, not {value!r}")
    values = list(value)
    if not values and not modal_field.required:
        return values
    unknown = [v for v in values if v not in modal_field.options]
    if unknown:
        raise ValueError(f"{name!r}: {unknown} are not among the options {list(modal_field.options)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name!r}: an option can be picked only once")
    low = max(modal_field.min_values, 1 if modal_field.required else 0)
    if not low <= len(values) <= modal_field.max_values:
        raise ValueError(
            f"{name!r}: pick between {low} and {modal_field.max_values} options, not {len(values)}"
        )
    return values


def modal_submission_components(
    modal: OpenedModal, values: Mapping[str, str | Sequence[str]]
) -> list[dict[str, Any]]:
    """``data.components`` of the MODAL_SUBMIT Discord sends for ``values``; ValueError if impossible.

    Inputs left out of ``values`` are submitted with their pre-filled value (or empty / the default
    options), as a member who did not touch them would; required ones must then have one.
    """
    known = {modal_field.custom_id for modal_field in modal.fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"the modal has no inputs {unknown} (inputs: {sorted(known)})")
    submitted: list[dict[str, Any]] = []
    fields = {modal_field.wrapper_id: modal_field for modal_field in modal.fields}
    for wrapper in modal.components:
        modal_field = fields.get(wrapper["id"])
        if modal_field is None:
            # Text displays come back as bare {type, id}.
            submitted.append({"type": wrapper["type"], "id": wrapper["id"]})
            continue
        inner: dict[str, Any] = {
            "type": modal_field.type,
            "id": modal_field.id,
            "custom_id": modal_field.custom_id,
        }
        value = values.get(modal_field.custom_id)
        if modal_field.is_text_input:
            inner["value"] = _submitted_text(modal_field, value)
        else:
            inner["values"] = _submitted_values(modal_field, value)
        if modal_field.in_label:
            submitted.append({"type": ComponentType.LABEL, "id": modal_field.wrapper_id, "component": inner})
        else:
            submitted.append(
                {"type": ComponentType.ACTION_ROW, "id": modal_field.wrapper_id, "components": [inner]}
            )
    return submitted
