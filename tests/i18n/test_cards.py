"""Status cards, results, buttons and replies in the reader's language (catalogue domain `cards`), and the
choice of that language for posts made outside an interaction."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot import presentation
from bot.domain.catalogue import catalogue_for
from bot.domain.models import ImageInfo, Job, JobState, ProviderName, Ratio, Resolution, VideoRequest
from bot.domain.text import Text, Value
from bot.i18n import LOCALES_DIR, Language, Translator, translator
from bot.jobs.defaults import MemberDefaults
from bot.jobs.derive import Variation, VariationKind
from bot.jobs.eta import EstimateScope, JobProgress
from bot.jobs.languages import MemberLanguages
from cogs.animate_image import AnimateImageForm
from cogs.settings import defaults_embed
from cogs.support.result_buttons import card_view, result_view, variation_label
from tests.factories import make_job

REQUEST = VideoRequest(
    model="seedance-1.5-pro",
    prompt="a fox blinks",
    resolution=Resolution.P720,
    ratio=Ratio.ADAPTIVE,
    duration_s=5,
    generate_audio=True,
    camera_fixed=False,
    seed=42,
)
ENGLISH = translator(Language.ENGLISH)
OTHERS = [language for language in Language if language is not Language.ENGLISH]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def job(**changes) -> Job:
    return make_job(REQUEST, **changes)


def progresses() -> list[JobProgress | None]:
    return [
        None,
        JobProgress(computed_at=1.7e9),
        JobProgress(computed_at=1.7e9, queue_position=0),
        JobProgress(computed_at=1.7e9, queue_position=4, fraction=0.31, fraction_estimated=True),
        JobProgress(
            computed_at=1.7e9,
            expected_total_s=250,
            eta_at=1.7e9 + 250,
            fraction=0.5,
            scope=EstimateScope.SERVER,
            sample_size=9,
        ),
        JobProgress(
            computed_at=1.7e9,
            expected_total_s=9000,
            eta_at=1.7e9 + 10,
            overdue=True,
            fraction=0.95,
            fraction_estimated=True,
            scope=EstimateScope.ALL_SERVERS,
        ),
    ]


def jobs() -> list[Job]:
    notes = ("turned upright as its EXIF orientation asks",)
    return [
        job(state=state, queue_position=2, progress_percent=40.5, finished_at=1.7e9 + 90, error_message=error)
        for state in JobState
        for error in (None, "The safety filter refused it.")
    ] + [job(id=123_456, first_frame=ImageInfo("PNG", 800, 600, 1000, "RGB", notes=notes))]


# --- English is what it always was (tests/test_presentation.py holds the English words) -------------------


def test_large_job_ids_are_never_grouped():
    big = job(id=123_456)
    assert presentation.card_title_prefix(translator(Language.FRENCH), big) == "Vidéo #123456 · "
    assert "#123456 " in presentation.ended_marker_text(translator(Language.GERMAN), big)


# --- other languages ---------------------------------------------------------------------------------------


def test_a_japanese_card_is_in_japanese():
    ja = translator(Language.JAPANESE)
    progress = JobProgress(computed_at=1.7e9, queue_position=3, expected_total_s=240, eta_at=1.7e9 + 240)
    card = presentation.localized_status_card(ja, job(), "Seedance 1.5 Pro", progress)
    fields = {field.name: field.value for field in card.fields}
    assert card.title == "動画 #7 · 順番待ち"
    assert fields["ステータス"].splitlines() == [
        "順番待ち",
        "順番：3 番目",
        "完了予定：<t:1700000240:R>（この種類の動画は通常 約 4 分 かかります）",
    ]
    assert (fields["モデル"], fields["音声"], fields["カメラ固定"], fields["長さ"]) == (
        "Seedance 1.5 Pro",
        "オン",
        "いいえ",
        "5 s",
    )
    assert card.footer.startswith("ジョブ #7 · ")
    assert card.description == "a fox blinks"  # the member's prompt is said as they wrote it


def test_numbers_and_durations_follow_the_language():
    fr, de, zh = (
        translator(language) for language in (Language.FRENCH, Language.GERMAN, Language.SIMPLIFIED_CHINESE)
    )
    running = job(state=JobState.RUNNING, progress_percent=40)
    assert presentation.localized_progress_text(fr, running) == "Génération en cours · 40\u00a0%"
    assert presentation.about_duration_text(de, 9000) == "etwa 2 Std. 30 Min."
    assert presentation.about_duration_text(zh, 240) == "约 4分钟"


def test_a_stored_english_reason_is_translated_when_a_catalogue_knows_it():
    failed = job(state=JobState.FAILED, error_message=None, finished_at=1.7e9 + 9)
    it = translator(Language.ITALIAN)
    assert presentation.ended_text(it, failed, "<@1>") == (
        "<@1> il video #7 non è riuscito. Il servizio video non ha indicato il motivo."
    )
    unknown = job(state=JobState.FAILED, error_message="Something only English knows.")
    assert presentation.ended_text(it, unknown, "<@1>").endswith("Something only English knows.")


def label_of(item) -> str | None:
    """A button's label (a DynamicItem wraps the button it shows)."""
    return getattr(getattr(item, "item", item), "label", None)


def test_result_buttons_and_menu_are_labelled_in_the_posts_language():
    catalogue = catalogue_for([ProviderName.RUNCOMFY])
    done = job(state=JobState.DELIVERED)
    view = result_view(done, catalogue, tr=translator(Language.GERMAN))
    labels = [label_of(item) for item in view.children]
    assert labels[:3] == ["Neu würfeln", "Verlängern", "Löschen"]
    menu = view.children[-1]
    assert getattr(getattr(menu, "item", None), "placeholder", None) == "Varianten …"
    assert [label_of(item) for item in result_view(done, catalogue).children][:3] == [
        "Re-roll",
        "Extend",
        "Delete",
    ]
    cancel = card_view(job(state=JobState.QUEUED), tr=translator(Language.SPANISH))
    assert cancel is not None and label_of(cancel.children[0]) == "Cancelar"
    ja = translator(Language.JAPANESE)
    assert (
        variation_label(ja, Variation(VariationKind.DURATION, "10"), "10 seconds long", catalogue)
        == "10 秒の長さ"
    )
    assert (
        variation_label(ENGLISH, Variation(VariationKind.RESOLUTION, "1080p"), "In 1080p", catalogue)
        == "In 1080p"
    )


@pytest.mark.parametrize("language", list(Language))
def test_crash_markers_are_found_in_every_languages_posts(language):
    """After a crash the notifier finds its earlier post by a marker: each post must carry its language's."""
    tr = translator(language)
    one = job(id=12)
    delivered = presentation.delivered_marker_text(tr, one)
    ended = presentation.ended_marker_text(tr, one)
    video_posts = [
        presentation.delivered_text(tr, one, "<@1>", "note"),
        presentation.too_large_text(tr, one, "<@1>", size_bytes=3, limit_bytes=2, url="u"),
    ]
    endings = [
        presentation.ended_text(tr, job(id=12, state=state, error_message="x"), "<@1>")
        for state in (JobState.CANCELLED, JobState.FAILED, JobState.EXPIRED, JobState.RUNNING)
    ]
    assert all(delivered in post for post in video_posts)
    assert all(ended in post for post in video_posts + endings)
    # A job numbered 123 is not job 12, in any language.
    other = job(id=123, state=JobState.CANCELLED)
    assert not any(
        marker in presentation.ended_text(tr, other, "<@1>")
        for marker in presentation.every_language(presentation.ended_marker_text, one)
    )


# --- the member's own answers: /history, /jobs, /job, /settings, the form, the private answers ------------


def test_a_history_entry_is_in_the_readers_language_and_english_is_unchanged():
    removed = job(state=JobState.DELIVERED, finished_at=1.7e9 + 90, removed_at=1.7e9 + 99)
    es = presentation.history_card(removed, "Seedance 1.5 Pro", translator(Language.SPANISH))
    assert es.title == "Vídeo #7 · Seedance 1.5 Pro"
    assert es.description == "a fox blinks\n\n<t:1700000090:R> · publicación eliminada"
    assert es.fields[0].name == "Opciones"
    assert es.fields[0].value.split(" · ") == [
        "Resolución 720p",
        "Relación de aspecto adaptive",
        "Duración 5 s",
        "Audio activado",
        "Cámara fija no",
        "Semilla 42",
    ]
    english = presentation.history_card(removed, "Seedance 1.5 Pro")
    assert (english.title, english.fields[0].name) == ("Video #7 · Seedance 1.5 Pro", "Options")
    assert english.description.endswith(" · post deleted")
    assert english.fields[0].value.startswith("resolution 720p · ratio adaptive · duration 5 s · audio on")


def test_a_jobs_line_a_first_card_and_a_private_answer_follow_the_language():
    running = job(id=12_345, state=JobState.RUNNING, progress_percent=40, thread_id=9, status_message_id=8)
    de = translator(Language.GERMAN)
    line = presentation.job_line(running, "https://x/1", de)
    assert line.startswith("**#12345** · ") and line.endswith(" · [ansehen](https://x/1)")
    assert presentation.job_line(running, "https://x/1").endswith(" · [view](https://x/1)")
    card = presentation.request_card(REQUEST, "Seedance 1.5 Pro", "<@1>", translator(Language.ITALIAN))
    assert (card.title, card.footer) == ("Video · Invio in corso", "Richiesto da <@1>")
    assert presentation.request_card(REQUEST, "m", "<@1>").title == "Video · Submitting"
    ja = translator(Language.JAPANESE)
    assert presentation.localized_started_text(ja, running).startswith(
        "動画 #12345 の作成を開始しました。完成したら <#9> に投稿されます："
    )
    failed = job(state=JobState.FAILED, error_message="The video service did not say why.")
    assert (
        presentation.not_started_text(ja, failed)
        == "動画 #7を開始できませんでした。動画サービスは理由を示しませんでした。"
    )
    assert presentation.not_started_text(ENGLISH, failed) == (
        "Video #7 did not start. The video service did not say why."
    )
    assert presentation.thread_name(None, " ", translator(Language.SIMPLIFIED_CHINESE)) == "Seedance 视频"


async def test_the_settings_are_shown_in_the_members_language():
    catalogue = catalogue_for([ProviderName.RUNCOMFY])
    defaults = MemberDefaults(model="seedance-9", duration_s=8, generate_audio=False)
    embed = defaults_embed(
        Text("Saved: your defaults here"), defaults, catalogue, translator(Language.GERMAN)
    )
    fields = {field.name: field.value for field in embed.fields}
    assert embed.title == "Gespeichert: Ihre Standardwerte hier"
    assert fields == {
        "Modell": "seedance-9 (derzeit nicht angeboten)",
        "Auflösung": "nicht festgelegt (Vorgabe des Modells)",
        "Seitenverhältnis": "nicht festgelegt (Vorgabe des Modells)",
        "Dauer": "8 s",
        "Ton": "aus",
        "Direktnachricht, wenn fertig": "nicht festgelegt",
    }
    assert embed.footer.text is not None and embed.footer.text.startswith(
        "Gilt für alles, was Sie weglassen;"
    )
    english = defaults_embed(Text("Your defaults here"), MemberDefaults(), catalogue)
    assert english.fields[0].value == "not set (Seedance 1.5 Pro)"
    assert english.fields[-1].name == "DM me when done" and english.fields[-1].value == "not set"


def form_inputs(form: AnimateImageForm) -> dict[str, tuple[str, str]]:
    """What Discord is sent for each input of the form: its label and placeholder, by custom id."""
    rows = form.to_dict()["components"]
    inputs = [component for row in rows for component in row["components"]]
    return {field["custom_id"]: (field["label"], field.get("placeholder", "")) for field in inputs}


async def test_the_animate_image_form_is_labelled_in_the_members_language():
    french = AnimateImageForm(custom_id="seedance:animate-image:x", tr=translator(Language.FRENCH))
    assert french.to_dict()["title"] == "Animer l'image"  # as the menu is named for a French member
    assert form_inputs(french) == {
        "prompt": (
            "Que doit-il se passer dans la vidéo ?",
            "Les bateaux tanguent doucement au lever du soleil",
        ),
        "duration": ("Secondes (facultatif)", "5"),
        # The option words are what members type in every language: kept as they are.
        "more": ("Autres options (facultatif)", "model:2.0 ratio:9:16 resolution:720p audio:off"),
    }
    english = AnimateImageForm(custom_id="seedance:animate-image:y")
    assert english.to_dict()["title"] == "Animate image"
    assert form_inputs(english)["prompt"] == (
        "What should happen in the video?",
        "The boats rock gently as the sun rises",
    )
    assert all(
        len(label) <= 45
        for language in Language
        for label, _ in form_inputs(AnimateImageForm(custom_id="z", tr=translator(language))).values()
    )  # Discord's limit for a label


#: The files whose member-facing sentences are `Text("…")` literals (the cards domain's answers).
SENTENCE_FILES = [
    "bot/presentation.py",
    "cogs/embeds.py",
    "cogs/history.py",
    "cogs/jobs.py",
    "cogs/settings.py",
    "cogs/animate_image.py",
    "cogs/results.py",
    "cogs/support/forms.py",
    "cogs/support/publisher.py",
]


def text_literals(source: str) -> set[str]:
    """The templates of every `Text("…")` in `source` (both sides of a `Text(a if c else b)` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Text" and node.args:
            argument = node.args[0]
            options = [argument.body, argument.orelse] if isinstance(argument, ast.IfExp) else [argument]
            found |= {option.value for option in options if isinstance(option, ast.Constant)}
    return found


def test_every_sentence_the_member_cogs_write_is_in_every_language():
    root = Path(__file__).resolve().parents[2]
    written = set().union(*(text_literals((root / name).read_text()) for name in SENTENCE_FILES))
    assert {"Your recent videos", "Deleted video #{id}.", "Animate image", "not set"} <= written
    for language in OTHERS:
        known: set[str] = set()
        for path in (LOCALES_DIR / language.folder / "LC_MESSAGES").glob("*.po"):
            with path.open("rb") as source:
                known |= {message.id for message in read_po(source, locale=language.babel) if message.id}
        assert written - known == set(), language


def test_the_sentence_finder_finds_what_it_should():
    source = 'Text("a {x}", x=1)\nText("b" if c else "c")\nText(name)\nText.verbatim("d")\nf(Text("e"))'
    assert text_literals(source) == {"a {x}", "b", "c", "e"}


# --- the catalogue -----------------------------------------------------------------------------------------


def catalogue_of(language: Language):
    with (LOCALES_DIR / language.folder / "LC_MESSAGES" / "cards.po").open("rb") as source:
        return read_po(source, locale=language.babel)


class Recording(Translator):
    """English, noting every message id the rendering asks for."""

    def __init__(self) -> None:
        super().__init__(Language.ENGLISH, ENGLISH._catalogues)
        self.asked: set[str] = set()

    def text(self, sentence: Text | str, /, **values: Value) -> str:
        text = sentence if isinstance(sentence, Text) else Text(sentence, **values)
        if text.template != "{sentence}":
            self.asked.add(text.template)
        return super().text(text)


def test_every_message_the_cards_say_is_in_every_catalogue():
    recording = Recording()
    catalogue = catalogue_for([ProviderName.RUNCOMFY])
    for progress in progresses():
        for one in jobs():
            presentation.localized_status_card(recording, one, "m", progress)
            presentation.ended_text(recording, one, "<@1>")
            presentation.delivered_text(recording, one, "<@1>")
            presentation.too_large_text(recording, one, "<@1>", size_bytes=3, limit_bytes=2, url="u")
            presentation.localized_started_text(recording, one)
    presentation.localized_started_text(recording, job(thread_id=9, status_message_id=8))
    presentation.about_duration_text(recording, 30)
    everything = VideoRequest(
        model="seedance-1.5-pro",
        prompt="p",
        resolution=Resolution.P720,
        ratio=Ratio.ADAPTIVE,
        duration_s=5,
        generate_audio=False,
        camera_fixed=True,
        watermark=False,
        return_last_frame=True,
        web_search=True,
    )
    presentation.localized_status_card(recording, make_job(everything), "m")
    result_view(job(state=JobState.DELIVERED), catalogue, tr=recording)
    card_view(job(state=JobState.PENDING), tr=recording)
    for language in OTHERS:
        ids = {message.id for message in catalogue_of(language) if message.id}
        assert recording.asked - ids == set(), language
    assert len(recording.asked) > 50


@pytest.mark.parametrize("language", OTHERS)
def test_each_catalogue_has_every_message_translated_with_the_same_placeholders(language):
    english_ids = {message.id for message in catalogue_of(Language.FRENCH) if message.id}
    messages = [message for message in catalogue_of(language) if message.id]
    assert {message.id for message in messages} == english_ids  # the same messages in every language
    for message in messages:
        assert message.string, message.id
        assert not message.fuzzy, message.id
        assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), message.id
        assert ("python-brace-format" in message.flags) == bool(PLACEHOLDER.search(message.id)), message.id
        for number in re.findall(r"\d+", PLACEHOLDER.sub("", message.id)):
            assert number in message.string, (message.id, number)  # "24 hours", "9:16": every number kept


@pytest.mark.parametrize("language", [Language.GERMAN, Language.FRENCH, Language.ITALIAN, Language.SPANISH])
def test_the_polite_form_is_used(language):
    informal = {
        Language.GERMAN: r"\b(du|dein|deine|dich|dir)\b",
        Language.FRENCH: r"\b(tu|ton|ta|tes|toi)\b",
        Language.ITALIAN: r"\b(tuo|tua|tuoi|ti)\b|mi\b[^ ]*ami\b",
        Language.SPANISH: r"\b(tu|tus|tienes|has)\b",
    }[language]
    for message in catalogue_of(language):
        if message.id:
            text = PLACEHOLDER.sub("", str(message.string)).replace(
                "`@ the boats rock gently duration:8`", ""
            )
            assert not re.search(informal, text, re.IGNORECASE), (language, message.string)


def test_the_catalogue_files_have_the_projects_header():
    for language in OTHERS:
        text = (LOCALES_DIR / language.folder / "LC_MESSAGES" / "cards.po").read_text(encoding="utf-8")
        assert f'"Language: {language.folder}\\n"' in text and "fuzzy" not in text


# --- which language a post uses ----------------------------------------------------------------------------


class CountingState:
    """A state store in memory that counts its reads and writes."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reads = 0
        self.writes = 0

    async def get(self, key: str) -> str | None:
        self.reads += 1
        await asyncio.sleep(0)  # a real store awaits: let concurrent callers interleave
        return self.values.get(key)

    async def put(self, key: str, value: str) -> None:
        self.writes += 1
        await asyncio.sleep(0)
        self.values[key] = value

    async def put_if_absent(self, key: str, value: str) -> bool:  # pragma: no cover - unused here
        raise NotImplementedError

    async def delete(self, key: str) -> None:  # pragma: no cover - unused here
        raise NotImplementedError

    async def items(self, prefix: str) -> list[tuple[str, str]]:  # pragma: no cover - unused here
        raise NotImplementedError


async def test_a_members_language_is_theirs_then_the_servers_then_english():
    languages = MemberLanguages(CountingState())
    await languages.remember(1, "ja")
    assert await languages.for_post(1, "fr") is Language.JAPANESE
    assert await languages.for_post(2, "fr") is Language.FRENCH  # never interacted: the server's
    assert await languages.for_post(2, "es-419") is Language.SPANISH  # a close regional variant
    assert await languages.for_post(2, None) is Language.ENGLISH
    assert await languages.for_post(None, "de") is Language.GERMAN
    assert await languages.for_post(2, "ko") is Language.ENGLISH  # a language the bot does not speak


async def test_a_burst_of_interactions_writes_once_and_only_on_a_change():
    state = CountingState()
    languages = MemberLanguages(state)
    written = await asyncio.gather(*(languages.remember(1, "fr") for _ in range(200)))
    assert written.count(True) == 1 and (state.reads, state.writes) == (1, 1)
    assert await languages.remember(1, "fr") is False and state.writes == 1
    assert await languages.remember(1, "de") is True and state.values["locale:1"] == "de"
    assert state.writes == 2 and state.reads == 1  # a known member costs no read at all


async def test_the_language_survives_a_restart_and_lookups_are_cached():
    state = CountingState()
    await MemberLanguages(state).remember(1, "pt-BR")
    after_restart = MemberLanguages(state)
    assert await after_restart.of_member(1) is Language.BRAZILIAN_PORTUGUESE
    assert await after_restart.of_member(1) is Language.BRAZILIAN_PORTUGUESE
    assert await after_restart.of_member(5) is None and await after_restart.of_member(5) is None
    assert state.reads == 1 + 2  # once per member, even for one the bot never heard from
    assert await after_restart.remember(1, "pt-BR") is False and state.writes == 1  # unchanged: no write


async def test_a_member_remembered_before_a_restart_is_not_written_again():
    state = CountingState()
    await MemberLanguages(state).remember(1, "it")
    assert await MemberLanguages(state).remember(1, "it") is False
    assert state.writes == 1


async def test_the_cache_is_bounded():
    state = CountingState()
    languages = MemberLanguages(state, cache_size=2)
    for user_id in (1, 2, 3):
        await languages.remember(user_id, "fr")
    reads = state.reads
    assert await languages.of_member(1) is Language.FRENCH  # dropped from memory, read again from the store
    assert state.reads == reads + 1
