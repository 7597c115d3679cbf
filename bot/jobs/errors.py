"""Errors of the jobs layer, each with a message fit to show the member."""

from __future__ import annotations

from bot.domain.text import Text


class JobError(Exception):
    """Base of every expected jobs-layer error."""

    def __init__(self, message: str | Text) -> None:
        self.text = message if isinstance(message, Text) else Text.verbatim(message)
        self.message = str(self.text)
        super().__init__(self.message)


class JobNotFoundError(JobError):
    """No job with that id belongs to this member."""


class JobNotCancellableError(JobError):
    """The job cannot be cancelled (already running, or over)."""


class ImageNotPublishedError(JobError):
    """The provider only takes image URLs and the image has none."""


class ProviderNotConfiguredError(JobError):
    """The chosen model runs on a provider this bot has no key for."""


class MissingFrameError(JobError):
    """The model needs a first frame and none was given."""


class VideoDownloadError(JobError):
    """The finished video could not be fetched; `permanent` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class DeliveryError(JobError):
    """The notifier could not hand the video over (or announce an ending).

    `permanent` when retrying cannot help (the job fails); `hold` when this process cannot finish it but the
    video is safe at the provider (a local file that cannot be written): the job is left for a later run.
    """

    def __init__(self, message: str, *, permanent: bool, hold: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.hold = hold


class PublishError(JobError):
    """The front end could not show the request (Discord down, no permission); nothing was charged."""


class FetchError(JobError):
    """An input file (an image given by URL or attachment) could not be fetched."""


class InvalidDefaultError(JobError):
    """A member's default cannot be saved: no model here takes it, or their default model does not."""
