"""Refusals in every language: each sentence the domain, the jobs layer and the error mapping can refuse with
is in every language's catalogues with the same placeholders, and says the same numbers in each."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po

from bot.domain.catalogue import RequestedOptions, default_catalogue, prompt_advice, prompt_advice_text
from bot.domain.errors import DomainError, InvalidImageError
from bot.domain.images import (
    NOTE_TEMPLATES,
    ImageLimits,
    fit_image,
    format_bytes,
    note_text,
    prepare_image,
    size_text,
)
from bot.domain.text import Text
from bot.i18n import LOCALES_DIR, Language, translator
from bot.jobs.explain import STORED_PARTS, STORED_TEMPLATES, stored_reason
from cogs.support.errors import describe_failure
from tests.doubles.media import make_image

ROOT = Path(__file__).resolve().parents[2]
#: Where member-facing refusals are written, as `Text("…")`.
SOURCES = (
    ROOT / "bot" / "domain",
    ROOT / "bot" / "jobs",
    ROOT / "cogs" / "support" / "errors.py",
    ROOT / "cogs" / "animate.py",
)
TRANSLATED = [language for language in Language if language is not Language.ENGLISH]


def _python_files() -> list[Path]:
    files: list[Path] = []
    for source in SOURCES:
        files += sorted(source.rglob("*.py")) if source.is_dir() else [source]
    return files


def _templates() -> dict[str, str]:
    """Every `Text("…")` template in the sources, with where it is written."""
    found: dict[str, str] = {}
    for path in _python_files():
        with path.open("rb") as source:
            for line, message, _, _ in extract("python", source, keywords={"Text": None}):
                template = message[0] if isinstance(message, tuple) else message
                if template:
                    found.setdefault(template, f"{path.relative_to(ROOT)}:{line}")
    return found


def _translated_ids(language: Language) -> set[str]:
    """Message ids with a translation in any of the language's catalogues."""
    ids: set[str] = set()
    for path in (LOCALES_DIR / language.folder / "LC_MESSAGES").glob("*.po"):
        with path.open("rb") as source:
            catalogue = read_po(source, locale=language.babel)
        ids |= {str(m.id) for m in catalogue if m.id and m.string and not m.fuzzy}
    return ids


def _placeholders(template: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


def test_the_sources_have_refusal_templates_to_check() -> None:
    templates = _templates()
    # The extraction itself must work, or every other test here would pass on nothing.
    too_small = (
        "{subject} is {shown}; width and height must each be more than {min_side} px. Use a larger image."
    )
    assert too_small in templates
    assert len(templates) > 50


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_every_refusal_template_is_translated_in_every_language(language: Language) -> None:
    translated = _translated_ids(language)
    missing = {template: where for template, where in _templates().items() if template not in translated}
    assert missing == {}


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_the_refusals_catalogue_keeps_every_placeholder_and_has_nothing_fuzzy(language: Language) -> None:
    path = LOCALES_DIR / language.folder / "LC_MESSAGES" / "refusals.po"
    with path.open("rb") as source:
        catalogue = read_po(source, locale=language.babel)
    entries = [m for m in catalogue if m.id]
    assert len(entries) > 50
    for message in entries:
        assert not message.fuzzy, message.id
        assert message.string, message.id
        assert _placeholders(str(message.string)) == _placeholders(str(message.id)), message.id
        if _placeholders(str(message.id)):
            assert "python-brace-format" in message.flags, message.id


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_every_number_and_unit_of_the_english_sentence_stays(language: Language) -> None:
    path = LOCALES_DIR / language.folder / "LC_MESSAGES" / "refusals.po"
    with path.open("rb") as source:
        catalogue = read_po(source, locale=language.babel)
    for message in (m for m in catalogue if m.id):
        english, translated = str(message.id), str(message.string)
        for number in re.findall(r"\d+(?:\.\d+)?", re.sub(r"\{[^}]*\}", "", english)):
            assert number in translated, (message.id, number)
        for unit in (" px", " MB", " s."):
            if unit in english:
                assert unit.strip(" .") in translated, (message.id, unit)


def _refusal(data: bytes, label: str = "first frame", limits: ImageLimits | None = None) -> DomainError:
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(data, label=label, limits=limits or ImageLimits())
    return caught.value


def test_a_too_small_image_is_refused_in_french_and_japanese_with_its_numbers() -> None:
    error = _refusal(make_image(200, 200))
    assert error.message == (
        "The first frame is 200×200 px; width and height must each be more than 300 px. Use a larger image."
    )
    french = translator(Language.FRENCH).text(error.text)
    assert french.startswith("La première image fait 200×200 px")
    assert "300 px" in french
    japanese = translator(Language.JAPANESE).text(error.text)
    assert japanese.startswith("最初のフレーム画像は200×200 px")
    assert "300 px" in japanese


def test_decimals_and_big_numbers_are_written_the_reader_s_way() -> None:
    error = _refusal(make_image(3000, 1000), label="reference image 2")
    assert "of 3.00; it must be between 0.4 and 2.5 (exclusive)" in error.message
    french = translator(Language.FRENCH).text(error.text)
    assert french.startswith("L’image de référence 2 fait 3000×1000 px")
    assert "entre 0,4 et 2,5" in french
    assert "3.00" in french  # English's trailing zeros say the ratio is not exactly 3: kept as written
    german = translator(Language.GERMAN).text(error.text)
    assert "zwischen 0,4 und 2,5" in german

    data = make_image(400, 400)
    too_large = _refusal(data, limits=ImageLimits(max_bytes=len(data) - 1))
    assert "(files must be smaller; 1 MB = 1,000,000 bytes)" in too_large.message
    assert "1 MB = 1\u202f000\u202f000 octets" in translator(Language.FRENCH).text(too_large.text)
    assert "1 MB = 1.000.000 Byte" in translator(Language.GERMAN).text(too_large.text)


@pytest.mark.parametrize(
    "size_bytes", [0, 1, 999, 1000, 1049, 1050, 1999, 29_999_999, 30_000_000, 123_456_789, 5 * 10**9, None]
)
def test_sizes_read_in_english_exactly_as_before(size_bytes: int | None) -> None:
    assert str(size_text(size_bytes)) == format_bytes(size_bytes)


def test_a_size_is_written_the_reader_s_way() -> None:
    assert translator(Language.FRENCH).text(size_text(1_500_000)) == "1,5\u00a0MB"
    assert translator(Language.JAPANESE).text(size_text(812)) == "812バイト"


def test_an_option_refusal_is_said_in_japanese_with_its_numbers() -> None:
    spec = default_catalogue().get("seedance-1.5-pro")
    with pytest.raises(DomainError) as caught:
        default_catalogue().validate(spec.key, RequestedOptions(prompt="x", duration_s=2))
    english = describe_failure(caught.value, action="/animate")
    assert english == "Seedance 1.5 Pro makes videos of 4 to 12 seconds; 2 s is outside that."
    japanese = describe_failure(caught.value, action="/animate", translator=translator(Language.JAPANESE))
    assert japanese == "Seedance 1.5 Proで作れる動画は4～12秒です。2 sはこの範囲外です。"


def test_an_unexpected_error_gives_its_reference_in_the_member_s_language(caplog) -> None:
    french = describe_failure(RuntimeError("boom"), action="/animate", translator=translator(Language.FRENCH))
    reference = re.search(r"`([0-9A-F]{6})`", french)
    assert reference is not None
    assert french.startswith("Un problème est survenu du côté du bot")
    assert f"[ref {reference.group(1)}]" in caplog.text
    english = describe_failure(RuntimeError("boom"), action="/animate")
    assert english.startswith("Something went wrong on the bot's side (reference `")


def test_a_plain_message_is_said_as_it_is_in_any_language() -> None:
    error = DomainError("Plain {braces} stay.")
    assert describe_failure(error, action="x", translator=translator(Language.SIMPLIFIED_CHINESE)) == (
        "Plain {braces} stay."
    )


# --------------------------------------------------- sentences stored in English, read back to translate


def _noise(width: int, height: int) -> bytes:
    """A JPEG of random pixels: it does not compress, so fitting it under a limit needs real work."""
    import io
    import random

    from PIL import Image

    pixels = random.Random(5).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_every_note_template_is_written_in_the_sources_and_translated() -> None:
    written = _templates()
    for template in (*NOTE_TEMPLATES, *STORED_TEMPLATES, *STORED_PARTS):
        assert template in written, template  # a template `note_text` knows but no code writes is stale
    for language in TRANSLATED:
        assert set(NOTE_TEMPLATES) <= _translated_ids(language)


def test_a_fitted_image_s_note_is_stored_in_english_and_read_back_with_its_numbers() -> None:
    prepared = prepare_image(_noise(1200, 900), label="image")
    fitted = fit_image(prepared, len(prepared.data) // 4)  # about 318.5 KB
    (note,) = fitted.info.notes
    assert re.fullmatch(
        r"scaled down to \d+×\d+ px and re-encoded as JPEG \(quality \d+\) to fit [\d.]+ KB", note
    )
    text = note_text(note)
    assert text.template.startswith("scaled down to {width}×{height} px")
    assert str(text) == note  # the stored English, character for character
    width, height = fitted.info.width, fitted.info.height
    french = translator(Language.FRENCH).text(text)
    assert french.startswith(f"réduite à {width}×{height} px et réencodée en JPEG (qualité ")
    limit = translator(Language.FRENCH).text(size_text(len(prepared.data) // 4))
    assert "," in limit  # a decimal comma, as French writes it
    assert french.endswith(f") pour tenir dans {limit}")
    assert "scaled" not in french


def test_an_animated_image_s_note_is_said_in_german_and_japanese() -> None:
    from PIL import Image

    frames = [Image.new("RGB", (400, 400), (10 * n, 0, 0)) for n in range(12)]
    buffer = __import__("io").BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    prepared = prepare_image(buffer.getvalue(), label="first frame")
    assert "animated GIF with 12 frames: the first frame is used" in prepared.info.notes
    text = note_text("animated GIF with 12 frames: the first frame is used")
    assert translator(Language.GERMAN).text(text) == (
        "animiertes GIF mit 12 Einzelbildern: Das erste Einzelbild wird verwendet"
    )
    assert (
        translator(Language.JAPANESE).text(text)
        == "12フレームのアニメーションGIF：最初のフレームを使用します"
    )


@pytest.mark.parametrize(
    "note",
    [
        "data after the end of the image was left out",
        "converted from 32-bit floating-point greyscale to 8-bit RGB",
        "converted from P to RGBA",
        "re-encoded as JPEG (quality 80) to stay under 30 MB",
        "TIFF with 3 pages: the first page is used",
    ],
)
def test_every_kind_of_note_reads_back_and_is_translated(note: str) -> None:
    text = note_text(note)
    assert str(text) == note
    italian = translator(Language.ITALIAN).text(text)
    assert italian != note
    for number in re.findall(r"\d+", note):
        assert number in italian


def test_an_unknown_note_stays_as_it_was() -> None:
    for note in ("a note from an older version", "braces {like} these"):
        assert translator(Language.FRENCH).text(note_text(note)) == note


def test_a_stored_failure_reason_with_values_is_said_in_spanish() -> None:
    from bot.jobs.explain import describe_failure as describe_job_failure

    stored = describe_job_failure("Boom.Failed", "<html>oops</html>")
    assert stored == "The video service reported error Boom.Failed (the details are in the bot's log)."
    spanish = translator(Language.SPANISH).text(stored_reason(stored))
    assert spanish == (
        "El servicio de vídeo ha informado del error Boom.Failed "
        "(los detalles están en los registros del bot)."
    )
    fixed = describe_job_failure("OutputVideoSensitiveContent", None)
    assert translator(Language.SPANISH).text(stored_reason(fixed)).startswith("El vídeo se ha creado")
    # The provider's own words are nobody's catalogue id: said as they are.
    assert translator(Language.SPANISH).text(stored_reason("Prompt too long.")) == "Prompt too long."


def test_a_refused_submit_gives_the_provider_s_status_in_french() -> None:
    from bot.jobs.explain import explain_submit_error
    from bot.providers.errors import ProviderInvalidRequestError

    explanation = explain_submit_error(ProviderInvalidRequestError("<html>", status_code=400))
    assert explanation.message == (
        "The video service refused the request: it answered HTTP 400 (the details are in the bot's log)."
    )
    french = translator(Language.FRENCH).text(stored_reason(explanation.message))
    assert french == (
        "Le service vidéo a refusé la demande : il a répondu HTTP 400 "
        "(les détails figurent dans les journaux du bot)."
    )
    assert translator(Language.FRENCH).text(explanation.text) == french


# ------------------------------------------------------------------- refusals of the jobs layer and /video


def test_a_url_only_provider_names_the_file_in_a_sentence_of_its_own() -> None:
    from types import SimpleNamespace

    from bot.domain.models import FrameImage, ImageInfo
    from bot.jobs.errors import ImageNotPublishedError
    from bot.jobs.service import _require_urls
    from bot.providers.base import References

    provider = SimpleNamespace(name=SimpleNamespace(value="Novita"), accepts_inline_images=False)
    frame = FrameImage(
        data=b"x", info=ImageInfo(format="PNG", width=400, height=400, size_bytes=1, mode="RGB")
    )
    cases = [
        (
            (frame, None, References()),
            "Novita only accepts images by public URL, and the first frame has none.",
        ),
        (
            (None, frame, References()),
            "Novita only accepts images by public URL, and the last frame has none.",
        ),
        (
            (None, None, References(images=(frame, frame))),
            "Novita only accepts images by public URL, and the reference image 1 has none.",
        ),
    ]
    germans = []
    for (first, last, references), english in cases:
        with pytest.raises(ImageNotPublishedError) as caught:
            _require_urls(provider, first, last, references)  # type: ignore[arg-type]
        assert caught.value.message == english
        germans.append(translator(Language.GERMAN).text(caught.value.text))
    assert germans == [
        "Novita akzeptiert Bilder nur über eine öffentliche URL, und das erste Bild hat keine.",
        "Novita akzeptiert Bilder nur über eine öffentliche URL, und das letzte Bild hat keine.",
        "Novita akzeptiert Bilder nur über eine öffentliche URL, und das Referenzbild 1 hat keine.",
    ]


@pytest.mark.parametrize(
    ("state", "english", "japanese"),
    [
        ("delivered", "Job #7 is already delivered.", "ジョブ#7はすでに「配信済み」の状態です。"),
        ("timed_out", "Job #7 is already timed_out.", "ジョブ#7はすでに「タイムアウト」の状態です。"),
    ],
)
def test_a_job_s_state_is_said_in_the_member_s_language(state: str, english: str, japanese: str) -> None:
    from bot.domain.models import JobState
    from bot.jobs.service import _state_word

    text = Text("Job #{id} is already {state}.", id="7", state=_state_word(JobState(state)))
    assert str(text) == english
    assert translator(Language.JAPANESE).text(text) == japanese


def test_every_state_has_its_word() -> None:
    from bot.domain.models import JobState
    from bot.jobs.service import _state_word

    assert [str(_state_word(state)) for state in JobState] == [state.value for state in JobState]


def test_a_file_over_its_size_is_named_by_its_kind() -> None:
    from bot.domain.models import MediaRole, MediaSlot
    from bot.jobs.service import _slot_subject

    video = _slot_subject(MediaSlot(MediaRole.VIDEO, 2))
    assert str(video) == "The reference video 2"
    assert translator(Language.BRAZILIAN_PORTUGUESE).text(video) == "O vídeo de referência 2"
    audio = _slot_subject(MediaSlot(MediaRole.AUDIO, 1))
    assert str(audio) == "The reference audio clip 1"
    assert translator(Language.ITALIAN).text(audio) == "La clip audio di riferimento 1"
    assert str(_slot_subject(MediaSlot(MediaRole.LAST_FRAME))) == "The last frame"


def test_an_unreadable_video_is_explained_in_german(tmp_path) -> None:
    from bot.domain.errors import MediaProcessingError
    from bot.domain.transcode import last_frame_png

    broken = tmp_path / "clip.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with pytest.raises(MediaProcessingError) as caught:
        last_frame_png(broken)
    assert caught.value.message.startswith("The video could not be processed: ")
    german = translator(Language.GERMAN).text(caught.value.text)
    assert german.startswith("Das Video: Die Datei konnte nicht verarbeitet werden, denn ")
    assert "processed" not in german


# --------------------------------------------------------------------- advice and the options summary


def test_prompt_advice_reads_as_before_in_english_and_groups_thousands_the_reader_s_way() -> None:
    spec = default_catalogue().get("seedance-2.0-pro")
    prompt = " ".join(["word"] * 1500)
    advice = prompt_advice_text(spec, prompt)
    assert advice is not None
    assert str(advice) == (
        "Seedance 2.0 Pro works best with prompts under 1,000 words (or 500 Chinese characters); "
        "yours has 1,500 words. It was sent as is."
    )
    assert prompt_advice(spec, prompt) == str(advice)
    french = translator(Language.FRENCH).text(advice)
    assert "moins de 1\u202f000 mots" in french and "1\u202f500 mots" in french
    assert "1.000 Wörtern" in translator(Language.GERMAN).text(advice)
    assert "1,000語" in translator(Language.JAPANESE).text(advice)


def test_the_options_summary_is_unchanged_in_english_and_said_in_japanese() -> None:
    spec = default_catalogue().get("seedance-2.0-pro")
    assert str(spec.options_text()) == spec.describe_options()
    assert (
        "duration (4–15 s), audio, seed (-1–4294967295), references (up to 9 images,"
        in spec.describe_options()
    )
    japanese = translator(Language.JAPANESE).text(spec.options_text())
    assert "references（画像9枚、動画3本、音声クリップ3個まで）" in japanese
    assert "、ratio（" in japanese


def test_the_video_refusal_is_a_translated_sentence() -> None:
    from cogs.animate import AnimateRefusedError

    error = AnimateRefusedError(
        Text(
            "/video needs Seedance 2.0 Pro, which none of this bot's video services offers. "
            "The bot's owner can add RunComfy or ModelArk."
        )
    )
    spanish = describe_failure(error, action="/video", translator=translator(Language.SPANISH))
    assert spanish.startswith("/video necesita Seedance 2.0 Pro")
