"""Errors of the domain layer: bad input a member can fix.

Every error here carries a message that is safe and useful to show to the member as it is: what was wrong,
what is allowed, with numbers. A message may be a `Text` (an English template with its values), which the
front end says in the member's language; `message` is always the English sentence.
"""

from __future__ import annotations

from bot.domain.text import Text


class DomainError(Exception):
    """Base of every expected, member-facing domain error."""

    code: str = "invalid"

    def __init__(self, message: str | Text) -> None:
        self.text = message if isinstance(message, Text) else Text.verbatim(message)
        self.message = str(self.text)
        super().__init__(self.message)


class InvalidRequestError(DomainError):
    """The options of a request do not fit the chosen model."""

    code = "invalid_request"


class UnknownModelError(InvalidRequestError):
    """No model of that name is in the catalogue."""

    code = "unknown_model"


class UnsupportedOptionError(InvalidRequestError):
    """An option was given that the chosen model does not have."""

    code = "unsupported_option"


class OptionValueError(InvalidRequestError):
    """An option's value is outside what the model allows."""

    code = "option_value"


class InvalidPromptError(InvalidRequestError):
    """The prompt is empty or too long."""

    code = "invalid_prompt"


class InvalidImageError(DomainError):
    """An image cannot be used as a frame; `code` says which rule it broke."""

    def __init__(self, message: str | Text, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidMediaError(DomainError):
    """A reference video or audio clip cannot be used; `code` says which rule it broke."""

    def __init__(self, message: str | Text, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class MediaProcessingError(DomainError):
    """A video cannot be fitted, joined or have its last frame taken (transcode.py); `code` says why."""

    def __init__(self, message: str | Text, *, code: str) -> None:
        super().__init__(message)
        self.code = code
