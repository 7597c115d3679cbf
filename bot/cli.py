"""`seedance-bot`: the command line and the composition root.

    seedance-bot animate IMAGE --prompt TEXT [options] [--out FILE]
    seedance-bot animate --image-url URL --prompt TEXT [options]
    seedance-bot wait JOB_ID [--out FILE]      resume a job an earlier run left in flight
    seedance-bot models [--provider NAME]      the configured providers and what each model accepts there
    seedance-bot run                           run the Discord bot
    seedance-bot doctor                        check settings, database, Discord token and API keys
    seedance-bot --env-file PATH COMMAND ...   read the settings' .env from PATH instead of ./.env
    seedance-bot --version                     the installed version

Exit codes: 0 the video was saved; 1 the job ended without a video; 2 bad input or configuration (nothing was
submitted); 3 the submit's outcome is unknown (not resent); 4 the video is ready but could not be saved here
(it waits at the provider: `wait JOB_ID --out FILE`); 130 interrupted (the job goes on; use `wait`).
`run`: 0 stopped cleanly; 1 could not start for a reason outside the settings (Discord unreachable);
2 a setting is missing or wrong (token refused, API key missing, database path unusable).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bot.doctor import check_database_path, exit_code, run_checks
from bot.domain.catalogue import Catalogue, ModelSpec, RequestedOptions, default_catalogue, validate_options
from bot.domain.errors import DomainError
from bot.domain.images import ImageLimits
from bot.domain.models import Job, JobOrigin, JobState, ProviderName, Requester
from bot.jobs.download import download_bytes
from bot.jobs.errors import DeliveryError, JobError
from bot.jobs.notifier import DownloadedVideo
from bot.jobs.poller import JobPoller
from bot.jobs.service import JobService
from bot.logs import configure_logging
from bot.malloc import return_large_buffers_to_the_system
from bot.runtime import Runtime, build_catalogue, build_job_engine, open_runtime
from bot.settings import ConfigurationError, Settings, load_settings
from bot.storage.errors import StorageError

EXIT_SAVED = 0
EXIT_JOB_ENDED = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_NOT_SAVED = 4
EXIT_INTERRUPTED = 130

#: The distribution name in pyproject.toml, for `--version`.
DISTRIBUTION = "seedance-bot"
#: How each provider is called in messages, and the variable that configures it.
PROVIDER_LABELS = {
    ProviderName.RUNCOMFY: "RunComfy",
    ProviderName.NOVITA: "Novita",
    ProviderName.ARK: "ModelArk",
}

log = logging.getLogger("bot.cli")


class CliError(Exception):
    """A problem to print in one line before exiting with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _on_off(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {value!r}")


def installed_version() -> str:
    """The installed package's version, or "unknown" when run from a tree that was never installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _key_variable(provider: ProviderName) -> str:
    return f"{provider.value.upper()}_API_KEY"


def _add_provider_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider",
        choices=[provider.value for provider in ProviderName],
        help="the provider to use first, instead of SEEDANCE_PROVIDER (its API key must be set)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with choices taken from the model catalogue."""
    catalogue = default_catalogue()
    parser = argparse.ArgumentParser(
        prog="seedance-bot", description="Turn a still image into a short video with Seedance."
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {installed_version()}",
        help="print the version and exit",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="read settings from this .env file instead of ./.env (environment variables still win)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    animate = commands.add_parser("animate", help="animate one image and save the MP4")
    animate.add_argument("image", nargs="?", type=Path, help="the first frame, a local image file")
    animate.add_argument("--image-url", help="the first frame as a public https URL (RunComfy needs one)")
    animate.add_argument("--prompt", required=True, help="what should happen in the video")
    animate.add_argument(
        "--model",
        choices=sorted({spec.key for spec in catalogue.every_spec}),
        default=None,
        help=f"the model (default {catalogue.default_key}); `seedance-bot models` says which provider has it",
    )
    _add_provider_option(animate)
    animate.add_argument("--resolution", help="480p, 720p or 1080p (per model)")
    animate.add_argument("--ratio", help="16:9, 4:3, 1:1, 3:4, 9:16, 21:9 or adaptive")
    animate.add_argument("--duration", type=int, help="seconds of video (per model)")
    animate.add_argument("--audio", dest="audio", action="store_true", default=None, help="generate audio")
    animate.add_argument("--no-audio", dest="audio", action="store_false", help="a silent video")
    animate.add_argument(
        "--camera-fixed", dest="camera_fixed", action="store_true", default=None, help="keep the camera still"
    )
    animate.add_argument(
        "--no-camera-fixed", dest="camera_fixed", action="store_false", help="let the camera move"
    )
    animate.add_argument("--seed", type=int, help="a number for repeatable results (-1: random)")
    animate.add_argument("--last-frame", type=Path, help="the last frame, a local image (Novita, ModelArk)")
    animate.add_argument(
        "--watermark",
        dest="watermark",
        action="store_true",
        default=None,
        help="ask for the provider's watermark",
    )
    animate.add_argument("--no-watermark", dest="watermark", action="store_false", help="no watermark")
    animate.add_argument("--tier", help="default or flex (offline: about half price, slower)")
    animate.add_argument("--expires-after", type=int, help="seconds before the provider gives up")
    animate.add_argument(
        "--return-last-frame", action="store_true", default=None, help="also save the last frame (ModelArk)"
    )
    animate.add_argument(
        "--web-search",
        action="store_true",
        default=None,
        help="let Seedance 2.0 search the web for facts in the prompt (RunComfy; slower)",
    )
    animate.add_argument("--out", type=Path, help="where to save the MP4 (default: seedance-<job>.mp4)")

    wait = commands.add_parser("wait", help="resume waiting for a job started by an earlier run")
    wait.add_argument("job_id", type=int, help="the job number an earlier `animate` printed (job #N)")
    wait.add_argument("--out", type=Path, help="where to save the MP4 (default: seedance-<job>.mp4)")

    commands.add_parser("run", help="run the Discord bot (needs DISCORD_TOKEN and the provider's key)")
    models = commands.add_parser(
        "models",
        help="list the configured providers, and per model which provider serves it with what options",
    )
    _add_provider_option(models)
    commands.add_parser(
        "doctor", help="check the settings, the database, the Discord token and each API key (costs nothing)"
    )
    return parser


@dataclass
class CliNotifier:
    """Prints progress to stderr and saves the finished video; resolves a future per awaited job."""

    out: Path | None
    stream: TextIO = sys.stderr
    started: float = field(default_factory=time.monotonic)
    #: Per awaited job: its final state, or None when its video is ready but could not be saved here.
    outcomes: dict[int, asyncio.Future[JobState | None]] = field(default_factory=dict)
    saved_to: dict[int, Path] = field(default_factory=dict)

    def expect(self, job_id: int) -> asyncio.Future[JobState | None]:
        """A future that resolves with the job's final state once it is delivered or over (None: held)."""
        return self.outcomes.setdefault(job_id, asyncio.get_running_loop().create_future())

    def say(self, text: str) -> None:
        """One progress line with the elapsed time."""
        elapsed = int(time.monotonic() - self.started)
        print(f"[{elapsed // 60}:{elapsed % 60:02d}] {text}", file=self.stream, flush=True)

    async def job_progressed(self, job: Job) -> None:
        """Print the new state, queue position or progress."""
        self.say(describe_progress(job))

    async def find_delivery(self, job: Job) -> str | None:
        """Nothing to adopt: saving the file again is harmless, so a resumed job simply saves it."""
        return None

    async def deliver_video(self, job: Job, video: DownloadedVideo) -> str:
        """Copy the finished video to its destination; a local failure leaves the video at the provider."""
        destination = self.out or Path(f"seedance-{job.id}.mp4")
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(shutil.copyfile, video.path, destination)
        except OSError as error:
            reason = error.strerror or str(error)
            self.say(
                f"job #{job.id} is ready but could not be saved to {destination}: {reason}. It waits at the "
                f"provider (usually for a day): run `seedance-bot wait {job.id} --out FILE` to save it."
            )
            self._resolve(job, None)
            raise DeliveryError(
                f"the file could not be written ({reason})", permanent=False, hold=True
            ) from error
        self.saved_to[job.id] = destination
        self.say(f"job #{job.id} saved {destination} ({video.size_bytes / 1024:.0f} KiB)")
        if video.last_frame is not None:
            last_frame_path = destination.with_suffix(".last-frame.png")
            await asyncio.to_thread(last_frame_path.write_bytes, video.last_frame)
            self.say(f"job #{job.id} saved its last frame as {last_frame_path}")
        self._resolve(job, JobState.DELIVERED)
        return str(destination)

    async def video_delivered(self, job: Job) -> None:
        """The saved line was printed already."""

    async def job_ended(self, job: Job) -> None:
        """Print why the job ended."""
        self.say(f"job #{job.id} {job.state.value}: {job.error_message or 'no reason given'}")
        self._resolve(job, job.state)

    def _resolve(self, job: Job, state: JobState | None) -> None:
        future = self.outcomes.get(job.id)
        if future is not None and not future.done():
            future.set_result(state)


def describe_progress(job: Job) -> str:
    """A one-line summary of a job's progress."""
    text = f"job #{job.id} {job.state.value}"
    if job.queue_position is not None:
        text += f", position {job.queue_position} in the queue"
    if job.progress_percent is not None and job.state is JobState.RUNNING:
        text += f", {job.progress_percent:.0f}%"
    return text


def _read_local_image(path: Path, limits: ImageLimits) -> bytes:
    if not path.is_file():
        raise CliError(f"{path}: no such file.")
    size = path.stat().st_size
    if size >= limits.max_bytes:
        limit_mb = limits.max_bytes / 1_000_000
        raise CliError(f"{path} is {size / 1_000_000:.1f} MB; images must be under {limit_mb:.0f} MB.")
    return path.read_bytes()


async def _read_image(args: argparse.Namespace, runtime: Runtime, limits: ImageLimits) -> bytes | None:
    if args.image is not None and args.image_url is not None:
        raise CliError("Give either an IMAGE file or --image-url, not both.")
    if args.image is not None:
        return await asyncio.to_thread(_read_local_image, args.image, limits)
    if args.image_url is not None:
        try:
            return await download_bytes(runtime.http, args.image_url, max_bytes=limits.max_bytes)
        except JobError as error:
            raise CliError(f"--image-url: {error.message}") from None
    return None


def _engine(runtime: Runtime, notifier: CliNotifier, wanted: set[int]) -> tuple[JobService, JobPoller]:
    # Only this run's jobs: the Discord bot, or another CLI run, may share the database.
    return build_job_engine(runtime, notifier, job_filter=lambda job: job.id in wanted)


def _check_writable(out: Path | None) -> None:
    """Refuse before anything is paid for when the video could not be saved where asked."""
    destination = out or Path("seedance-video.mp4")
    if destination.is_dir():
        raise CliError(
            f"--out {destination} is a folder; give a file name, e.g. {destination / 'video.mp4'}."
        )
    folder = destination.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"cannot save the video in {folder}: {error.strerror or error}.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"cannot save the video in {folder}: permission denied.")


async def _animate(args: argparse.Namespace, settings: Settings, current_job: list[int]) -> int:
    limits = ImageLimits()
    options = RequestedOptions(
        prompt=args.prompt,
        resolution=args.resolution,
        ratio=args.ratio,
        duration_s=args.duration,
        generate_audio=args.audio,
        camera_fixed=args.camera_fixed,
        seed=args.seed,
        has_last_frame=args.last_frame is not None,
        watermark=args.watermark,
        service_tier=args.tier,
        expires_after_s=args.expires_after,
        return_last_frame=args.return_last_frame,
        web_search=args.web_search,
    )
    # Options and the destination are checked before anything is opened or fetched: a typo costs nothing.
    _validate_naming_providers(settings, args.model, options)
    _check_writable(args.out)
    async with open_runtime(settings) as runtime:
        image = await _read_image(args, runtime, limits)
        last_frame = (
            await asyncio.to_thread(_read_local_image, args.last_frame, limits)
            if args.last_frame is not None
            else None
        )
        notifier = CliNotifier(out=args.out)
        wanted: set[int] = set()
        service, poller = _engine(runtime, notifier, wanted)
        prepared = await service.prepare(args.model, options, image, last_frame)
        if prepared.first_frame is not None:
            info = prepared.first_frame.info
            notifier.say(
                f"image ok: {info.width}×{info.height} {info.format}, {info.size_bytes / 1024:.0f} KiB"
            )
            for note in info.notes:
                notifier.say(f"note: {note}")
        provider = service.provider_for(prepared.spec)
        local = args.image is not None or args.last_frame is not None
        if local and not provider.accepts_inline_images:
            raise CliError(
                f"{provider.name.value} takes images only as public https URLs, and this command "
                f"cannot publish local files. The image passed validation: upload it somewhere public "
                "and pass --image-url URL instead (or use a provider that takes images inline: novita, "
                "ark). Nothing was submitted."
            )
        if (
            args.image_url is not None
            and prepared.first_frame is not None
            and prepared.first_frame.info.notes
        ):
            notifier.say("note: the provider fetches the URL itself and receives the image as it is there")
        await poller.start()
        try:
            job = await service.submit(
                prepared, Requester(origin=JobOrigin.CLI), first_frame_url=args.image_url
            )
            current_job.append(job.id)
            return await _finish(job, notifier, poller, wanted)
        finally:
            await poller.stop()


async def _finish(job: Job, notifier: CliNotifier, poller: JobPoller, wanted: set[int]) -> int:
    if job.state.is_final:
        notifier.say(f"job #{job.id} {job.state.value}: {job.error_message}")
        return _ended_code(job)
    notifier.say(describe_progress(job))
    outcome = notifier.expect(job.id)
    wanted.add(job.id)
    poller.track(job)
    return _exit_code(await outcome, job.id, notifier)


def _ended_code(job: Job) -> int:
    """A job that ended without a video: 2 when the cause is the configuration (a refused API key)."""
    if job.error_code == "provider_auth":
        print(
            f"error: {job.provider.value.upper()}_API_KEY was refused by {job.provider.value}: "
            "check the key.",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return EXIT_UNKNOWN if job.state is JobState.UNKNOWN else EXIT_JOB_ENDED


def _exit_code(final: JobState | None, job_id: int, notifier: CliNotifier) -> int:
    if final is None:
        return EXIT_NOT_SAVED
    if final is JobState.DELIVERED:
        print(notifier.saved_to[job_id])
        return EXIT_SAVED
    return EXIT_UNKNOWN if final is JobState.UNKNOWN else EXIT_JOB_ENDED


async def _wait(args: argparse.Namespace, settings: Settings, current_job: list[int]) -> int:
    async with open_runtime(settings) as runtime:
        job = await runtime.store.get(args.job_id)
        if job is None:
            raise CliError(f"There is no job #{args.job_id} in {settings.database_path}.")
        current_job.append(job.id)
        notifier = CliNotifier(out=args.out)
        if job.state.is_final:
            where = f" ({job.delivery_ref})" if job.delivery_ref else ""
            notifier.say(
                f"job #{job.id} is already {job.state.value}{where}: {job.error_message or ''}".rstrip(": ")
            )
            return EXIT_SAVED if job.state is JobState.DELIVERED else EXIT_JOB_ENDED
        _check_writable(args.out)
        wanted = {job.id}
        _, poller = _engine(runtime, notifier, wanted)
        outcome = notifier.expect(job.id)
        # The operator resumes this job by hand: take it even from a run that was killed a moment ago.
        await poller.start(take_over=True)
        try:
            notifier.say(f"resumed {describe_progress(job)}")
            final = await outcome
        finally:
            await poller.stop()
        return _exit_code(final, job.id, notifier)


def _configured(settings: Settings) -> tuple[ProviderName, ...]:
    """Providers with an API key, the default first (unlike `configured_providers`, never one without)."""
    return tuple(p for p in settings.configured_providers if settings.provider_key(p) is not None)


def _where_else(settings: Settings, key: str, options: RequestedOptions | None) -> str | None:
    """Which other provider offers `key` (with `options`, when given), said the way the user can act on it."""
    configured = _configured(settings)
    for spec in default_catalogue().every_spec:
        if spec.key != key or spec.provider is settings.seedance_provider:
            continue
        if options is not None:
            try:
                validate_options(spec, options)
            except DomainError:
                continue
        label = PROVIDER_LABELS[spec.provider]
        if spec.provider in configured:
            return f"{label} offers it: add --provider {spec.provider.value}."
        return f"{label} offers it ({_key_variable(spec.provider)}), which is not configured."
    return None


def _validate_naming_providers(settings: Settings, model: str | None, options: RequestedOptions) -> None:
    """Validate against the configured providers; a refusal says which provider would take the request."""
    catalogue = build_catalogue(settings)
    if model is not None and model not in catalogue.keys:
        offers = [spec.provider for spec in default_catalogue().every_spec if spec.key == model]
        named = " or ".join(f"{PROVIDER_LABELS[p]} ({_key_variable(p)})" for p in offers)
        verb = "is" if len(offers) == 1 else "are"
        raise CliError(f"{model} is offered by {named}, which {verb} not configured.")
    try:
        catalogue.validate(model, options)
    except DomainError as error:
        hint = _where_else(settings, catalogue.get(model).key, options)
        raise CliError(f"{error.message} {hint}" if hint else error.message) from None


def _models(settings: Settings) -> int:
    try:
        catalogue = build_catalogue(settings)
    except ConfigurationError as error:
        raise CliError(str(error)) from None
    configured = _configured(settings)
    if configured:
        default = settings.seedance_provider
        listed = ", ".join(
            f"{PROVIDER_LABELS[p]} ({_key_variable(p)}{', default' if p is default else ''})"
            for p in configured
        )
        print(f"configured providers: {listed}")
    else:
        print(f"configured providers: none (set {_key_variable(settings.seedance_provider)})")
    others = [p for p in ProviderName if p not in configured]
    if others:
        print("not configured: " + ", ".join(f"{PROVIDER_LABELS[p]} ({_key_variable(p)})" for p in others))
    by_key: dict[str, list[ModelSpec]] = {}
    for spec in default_catalogue().every_spec:
        by_key.setdefault(spec.key, []).append(spec)
    for key, specs in by_key.items():
        print(_model_heading(catalogue, key, specs[0]))
        # The provider that serves the key comes first, then the others in the order they would take over.
        rank = {provider: index for index, provider in enumerate(configured)}
        for spec in sorted(specs, key=lambda s: rank.get(s.provider, len(rank))):
            print(_offer_line(catalogue, spec, configured))
    return EXIT_SAVED


def _model_heading(catalogue: Catalogue, key: str, spec: ModelSpec) -> str:
    default = " (default)" if key == catalogue.default_key else ""
    return f"{key}{default}: {spec.display_name}"


def _offer_line(catalogue: Catalogue, spec: ModelSpec, configured: tuple[ProviderName, ...]) -> str:
    label = PROVIDER_LABELS[spec.provider]
    if spec.provider not in configured:
        status = f"not configured, set {_key_variable(spec.provider)}"
    elif spec.key in catalogue.keys and catalogue.get(spec.key).provider is spec.provider:
        status = "serves it"
    else:
        status = "configured, used with --provider " + spec.provider.value
    # A configured provider's id may be overridden (*_MODEL_IDS): show the id that would be sent.
    model_id = (
        catalogue.spec_for(spec.provider, spec.key).provider_model_id
        if spec.provider in configured
        else spec.provider_model_id
    )
    return f"    {label} ({status}; {model_id}): {spec.describe_options()}"


def _doctor(settings: Settings) -> int:
    checks = asyncio.run(run_checks(settings))
    for check in checks:
        print(check.line())
    return exit_code(checks)


def _run(settings: Settings) -> int:
    # discord.py is imported only for `run`: the other commands start faster without it.
    from bot.app import StartupError, run_bot  # noqa: PLC0415

    try:
        settings.require_discord_token()
        settings.require_provider_key()
        check_database_path(settings.database_path)
        return_large_buffers_to_the_system()
        asyncio.run(run_bot(settings))
    except (ConfigurationError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except sqlite3.Error as error:
        print(f"error: DATABASE_PATH: {settings.database_path}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_JOB_ENDED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_SAVED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    chosen = getattr(args, "provider", None)
    overrides: dict[str, object] = {} if chosen is None else {"seedance_provider": ProviderName(chosen)}
    try:
        settings = load_settings(env_file=args.env_file, **overrides)
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "models":
        try:
            return _models(settings)
        except CliError as error:
            print(f"error: {error.message}", file=sys.stderr)
            return error.exit_code
    # The bot logs at LOG_LEVEL (INFO by default: it says when it is ready and what each job did). The
    # other commands print their own progress lines; log records would interleave with them, so only
    # problems are logged there unless LOG_LEVEL was asked for explicitly.
    explicit = "log_level" in settings.model_fields_set
    level = settings.log_level if args.command == "run" or explicit else "WARNING"
    configure_logging(level, settings.log_format)
    if args.command == "run":
        return _run(settings)
    if args.command == "doctor":
        return _doctor(settings)
    current_job: list[int] = []
    handler = _animate if args.command == "animate" else _wait
    try:
        check_database_path(settings.database_path)
        return asyncio.run(handler(args, settings, current_job))
    except (DomainError, JobError) as error:
        print(f"error: {error.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (CliError, ConfigurationError, StorageError) as error:
        print(f"error: {getattr(error, 'message', error)}", file=sys.stderr)
        return getattr(error, "exit_code", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        if current_job:
            print(
                f"\ninterrupted: job #{current_job[0]} goes on at the provider; "
                f"run `seedance-bot wait {current_job[0]}` to pick it up.",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
