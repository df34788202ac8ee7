"""The Alexa skill's endpoint: recorded request bodies (as Amazon documents them, in alexa/)
answered with valid responses; AudioPlayer events counted as smart-speaker listening; and the
verification Amazon requires, against a certificate chain made here (a test root, an
intermediate and an echo-api.amazon.com leaf), with tampered, stale, mis-addressed and
another skill's requests refused with a 4xx."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi import FastAPI

from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade, upgrade_async
from onair.integrations.alexa.listening import SpeakerPlayback
from onair.integrations.alexa.verification import (
    SignatureVerifier,
    VerificationException,
    mozilla_roots,
)
from onair.media.audience import Audience
from onair.media.feed import ProgramFeed
from onair.settings import Settings
from tests.conftest import sign_up
from tests.server import serve

FIXTURES = Path(__file__).parent / "alexa"
SKILL = "amzn1.ask.skill.6f1c2b7e-0d3a-4c55-9e2b-5a7d0c1e9f42"
CERT_URL = "https://s3.amazonaws.com/echo.api/echo-api-cert-12.pem"
PUBLIC = "https://radio.example"


def recorded(name: str, show_id: int = 0, **request: Any) -> dict[str, Any]:
    text = (FIXTURES / f"{name}.json").read_text().replace("SHOW_ID", str(show_id))
    body: dict[str, Any] = json.loads(text)
    body["request"].update(request)
    return body


def now_stamp(offset_s: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- a certificate chain of our own -----------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    root: x509.Certificate
    pem: bytes
    """The leaf, then the intermediate, as Amazon serves it."""
    key: rsa.RSAPrivateKey


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None,
    *,
    ca: bool,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (_name(subject), key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=not ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("echo-api.amazon.com")]), False
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_chain() -> Chain:
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
    root = _certificate("OnAir Test Root CA", keys[0], None, ca=True)
    middle = _certificate("OnAir Test Issuing CA", keys[1], (root.subject, keys[0]), ca=True)
    leaf = _certificate("echo-api.amazon.com", keys[2], (middle.subject, keys[1]), ca=False)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, middle))
    return Chain(root=root, pem=pem, key=keys[2])


@pytest.fixture(scope="module")
def chain() -> Chain:
    return make_chain()


@pytest.fixture(scope="module")
def stranger() -> Iterator[Chain]:
    """A chain just as good, under a root nobody trusts."""
    yield make_chain()


def signed(chain: Chain, raw: bytes, url: str = CERT_URL) -> dict[str, str]:
    signature = chain.key.sign(raw, padding.PKCS1v15(), hashes.SHA256())
    return {
        "SignatureCertChainUrl": url,
        "Signature-256": base64.b64encode(signature).decode(),
        "content-type": "application/json",
    }


# --- the apps ----------------------------------------------------------------------------------


async def _app(tmp_path: Path, **settings: Any) -> FastAPI:
    config = Settings(data_dir=tmp_path / "var", **({"public_url": PUBLIC} | settings))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(config.resolved_database_url)
    return create_app(config, FakeClock())


async def _close(app: FastAPI) -> None:
    await app.state.onair.stations.aclose()
    await app.state.onair.engine.dispose()


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="https://radio.example")


@pytest.fixture
async def unverified(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """Verification off (ONAIR_ALEXA_VERIFY=false), so recorded bodies are answered as they are."""
    app = await _app(tmp_path, alexa_verify=False)
    yield app
    await _close(app)


async def _live_show(client: httpx.AsyncClient, title: str, genre: str) -> int:
    await sign_up(client, "nightowl")
    show = (await client.post("/api/v1/shows", json={"title": title, "genre": genre})).json()
    assert (await client.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return int(show["id"])


async def _ask(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/integrations/alexa", content=json.dumps(body).encode())
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert answer["version"] == "1.0"
    return answer


def _speech(answer: dict[str, Any]) -> str:
    ssml: str = answer["response"]["outputSpeech"]["ssml"]
    assert ssml.startswith("<speak>") and ssml.endswith("</speak>")
    return ssml


# --- answers -----------------------------------------------------------------------------------


async def test_recorded_requests_get_valid_answers(unverified: FastAPI) -> None:
    async with _client(unverified) as client:
        show_id = await _live_show(client, "Night Jazz & Blues", "Jazz")
        station = unverified.state.onair.stations.get(show_id)
        assert station is not None

        # "Alexa, open OnAir": what is live, then a question (the session stays open).
        launch = await _ask(client, recorded("launch"))
        speech = _speech(launch)
        assert "One show is live. Night Jazz &amp; Blues, with nightowl." in speech  # escaped
        assert launch["response"]["shouldEndSession"] is False
        assert "reprompt" in launch["response"]

        # "play night jazz": the best match, on its HTTPS AAC stream, replacing what played.
        play = await _ask(client, recorded("play_intent"))
        assert "Playing Night Jazz &amp; Blues" in _speech(play)
        assert play["response"]["shouldEndSession"] is True
        [directive] = play["response"]["directives"]
        assert directive["type"] == "AudioPlayer.Play"
        assert directive["playBehavior"] == "REPLACE_ALL"
        stream = directive["audioItem"]["stream"]
        assert stream["url"] == f"{PUBLIC}/listen/{show_id}.aac"
        assert stream["token"] == f"show:{show_id}"
        assert stream["offsetInMilliseconds"] == 0
        assert directive["audioItem"]["metadata"]["title"] == "Night Jazz & Blues"

        # A genre finds it too; something that is nowhere is said so.
        by_genre = recorded("play_intent")
        by_genre["request"]["intent"]["slots"]["query"]["value"] = "jazz"
        genre = await _ask(client, by_genre)
        assert genre["response"]["directives"][0]["audioItem"]["stream"]["token"] == (
            f"show:{show_id}"
        )
        nothing = recorded("play_intent")
        nothing["request"]["intent"]["slots"]["query"]["value"] = "polka from mars"
        assert "I found nothing" in _speech(await _ask(client, nothing))

        # PlaybackStarted counts the Echo as a smart speaker; no speech may answer it.
        started = await _ask(client, recorded("playback_started", show_id))
        assert "outputSpeech" not in started["response"]
        assert "shouldEndSession" not in started["response"]
        assert station.audience().smart_speaker == 1
        again = await _ask(client, recorded("playback_started", show_id))  # counted once
        assert "directives" not in again["response"]
        assert station.audience().smart_speaker == 1

        # Nearly finished: a live stream does not finish, so the same stream is queued to
        # reconnect if it ever drops, after the current one.
        nearly = await _ask(client, recorded("playback_nearly_finished", show_id))
        [enqueue] = nearly["response"]["directives"]
        assert enqueue["type"] == "AudioPlayer.Play"
        assert enqueue["playBehavior"] == "ENQUEUE"
        queued = enqueue["audioItem"]["stream"]
        assert queued["url"] == f"{PUBLIC}/listen/{show_id}.aac"
        assert queued["token"] == f"show:{show_id}:1"
        assert queued["expectedPreviousToken"] == f"show:{show_id}"
        assert "outputSpeech" not in nearly["response"]

        # "Alexa, pause": the player stops; PlaybackStopped then lowers the count.
        pause = await _ask(client, recorded("pause_intent", show_id))
        assert [d["type"] for d in pause["response"]["directives"]] == ["AudioPlayer.Stop"]
        stopped = await _ask(client, recorded("playback_stopped", show_id))
        assert stopped["response"] == {}
        assert station.audience().smart_speaker == 0

        # A failed stream is logged and stops the count; the session's end gets no speech.
        await _ask(client, recorded("playback_started", show_id))
        assert station.audience().smart_speaker == 1
        failed = await _ask(client, recorded("playback_failed", show_id))
        assert "outputSpeech" not in failed["response"]
        assert station.audience().smart_speaker == 0
        ended = await _ask(client, recorded("session_ended"))
        assert ended["response"] == {}

        stop = recorded("pause_intent", show_id)
        stop["request"]["intent"]["name"] = "AMAZON.StopIntent"
        [cleared] = (await _ask(client, stop))["response"]["directives"]
        assert cleared == {"type": "AudioPlayer.ClearQueue", "clearBehavior": "CLEAR_ALL"}

        # Resume plays the show again; next, with one show live, says so.
        resume = recorded("pause_intent", show_id)
        resume["request"]["intent"]["name"] = "AMAZON.ResumeIntent"
        resumed = await _ask(client, resume)
        assert resumed["response"]["directives"][0]["playBehavior"] == "REPLACE_ALL"
        following = recorded("pause_intent", show_id)
        following["request"]["intent"]["name"] = "AMAZON.NextIntent"
        assert "only show live" in _speech(await _ask(client, following))

        # The device's buttons: no speech may answer them.
        button = recorded("playback_started", show_id)
        button["request"] = {
            "type": "PlaybackController.PauseCommandIssued",
            "requestId": "amzn1.echo-api.request.button-1",
            "timestamp": button["request"]["timestamp"],
            "locale": "en-US",
        }
        paused = await _ask(client, button)
        assert [d["type"] for d in paused["response"]["directives"]] == ["AudioPlayer.Stop"]
        assert "outputSpeech" not in paused["response"]
        button["request"]["type"] = "PlaybackController.PlayCommandIssued"
        played = await _ask(client, button)
        assert played["response"]["directives"][0]["audioItem"]["stream"]["token"] == (
            f"show:{show_id}"
        )
        assert "outputSpeech" not in played["response"]
        assert "shouldEndSession" not in played["response"]

        # Help and fallback keep the session open; the show's end makes nearly-finished quiet.
        helping = recorded("pause_intent", show_id)
        helping["request"]["intent"]["name"] = "AMAZON.HelpIntent"
        assert (await _ask(client, helping))["response"]["shouldEndSession"] is False
        home = recorded("pause_intent", show_id)
        home["request"]["intent"]["name"] = "AMAZON.NavigateHomeIntent"
        assert (await _ask(client, home))["response"] == {"shouldEndSession": True}
        fallback = recorded("pause_intent", show_id)
        fallback["request"]["intent"]["name"] = "AMAZON.FallbackIntent"
        assert "can't help" in _speech(await _ask(client, fallback))
        assert (await client.post(f"/api/v1/shows/{show_id}/end")).status_code == 200
        after = await _ask(client, recorded("playback_nearly_finished", show_id))
        assert after["response"] == {}


async def test_hls_is_played_when_chosen(tmp_path: Path) -> None:
    app = await _app(tmp_path, alexa_verify=False, alexa_stream="hls")
    try:
        async with _client(app) as client:
            quiet = await _ask(client, recorded("launch"))
            assert "Nothing is live" in _speech(quiet)
            assert quiet["response"]["shouldEndSession"] is True
            show_id = await _live_show(client, "Night Jazz", "Jazz")
            answer = await _ask(client, recorded("play_intent"))
        stream = answer["response"]["directives"][0]["audioItem"]["stream"]
        assert stream["url"] == f"{PUBLIC}/listen/{show_id}.m3u8"
    finally:
        await _close(app)


async def test_no_stream_is_sent_to_alexa_without_https(tmp_path: Path) -> None:
    app = await _app(tmp_path, alexa_verify=False, public_url="")  # the request's http://
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://radio.lan") as client:
            await _live_show(client, "Night Jazz", "Jazz")
            answer = await _ask(client, recorded("play_intent"))
        assert "directives" not in answer["response"]
        assert "https" in _speech(answer)
    finally:
        await _close(app)


# --- verification ------------------------------------------------------------------------------


async def test_only_verified_requests_for_this_skill_are_answered(
    tmp_path: Path, chain: Chain, stranger: Chain
) -> None:
    app = await _app(tmp_path, alexa_skill_id=SKILL)
    app.state.alexa.signature = SignatureVerifier(
        fetch=lambda url: chain.pem, trust_roots=[chain.root]
    )
    launch = recorded("launch", timestamp=now_stamp())
    raw = json.dumps(launch).encode()
    try:
        async with _client(app) as client:

            async def post(body: bytes, headers: dict[str, str]) -> httpx.Response:
                return await client.post("/integrations/alexa", content=body, headers=headers)

            # Signed with the chain the verifier trusts: answered.
            ok = await post(raw, signed(chain, raw))
            assert ok.status_code == 200, ok.text
            assert _speech(ok.json())

            refusals: dict[str, tuple[bytes, dict[str, str]]] = {
                "tampered body": (
                    raw.replace(b"LaunchRequest", b"IntentRequest"),
                    signed(chain, raw),
                ),
                "no signature": (raw, {"SignatureCertChainUrl": CERT_URL}),
                "untrusted root": (raw, signed(stranger, raw)),
            }
            stale = json.dumps(recorded("launch", timestamp=now_stamp(-151))).encode()
            refusals["stale timestamp"] = (stale, signed(chain, stale))
            future = json.dumps(recorded("launch", timestamp=now_stamp(+200))).encode()
            refusals["future timestamp"] = (future, signed(chain, future))
            for label, url in {
                "http URL": "http://s3.amazonaws.com/echo.api/echo-api-cert-12.pem",
                "wrong host": "https://notamazon.com/echo.api/echo-api-cert-12.pem",
                "wrong path": "https://s3.amazonaws.com/EcHo.aPi/echo-api-cert-12.pem",
                "escaping path": "https://s3.amazonaws.com/echo.api/../invalid.pem",
                "wrong port": "https://s3.amazonaws.com:563/echo.api/echo-api-cert-12.pem",
                "bad port": "https://s3.amazonaws.com:x/echo.api/echo-api-cert-12.pem",
            }.items():
                refusals[label] = (raw, signed(chain, raw, url))
            for label, (body, headers) in refusals.items():
                r = await post(body, headers)
                assert r.status_code == 400, f"{label}: {r.status_code} {r.text}"
                assert r.json()["error"]["code"] == "alexa_verification", label

            # Genuine, but for another skill: 403.
            other = recorded("launch", timestamp=now_stamp())
            other["context"]["System"]["application"]["applicationId"] = "amzn1.ask.skill.other"
            other_raw = json.dumps(other).encode()
            r = await post(other_raw, signed(chain, other_raw))
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "wrong_skill"

            # Not JSON, not UTF-8: 400, never 500.
            for junk in (b"{not json", b"\xff\xfe", b"[]"):
                r = await post(junk, signed(chain, junk))
                assert r.status_code == 400, (junk, r.text)
    finally:
        await _close(app)


async def test_the_port_443_and_case_of_the_host_are_accepted(tmp_path: Path, chain: Chain) -> None:
    app = await _app(tmp_path, alexa_skill_id=SKILL)
    app.state.alexa.signature = SignatureVerifier(
        fetch=lambda url: chain.pem, trust_roots=[chain.root]
    )
    raw = json.dumps(recorded("session_ended", timestamp=now_stamp())).encode()
    try:
        async with _client(app) as client:
            for url in (
                "https://s3.amazonaws.com:443/echo.api/echo-api-cert-12.pem",
                "HTTPS://S3.AMAZONAWS.COM/echo.api/echo-api-cert-12.pem",
                "https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert-12.pem",
            ):
                r = await client.post(
                    "/integrations/alexa", content=raw, headers=signed(chain, raw, url)
                )
                assert r.status_code == 200, (url, r.text)
    finally:
        await _close(app)


def test_the_interaction_model_names_every_intent_the_skill_answers() -> None:
    model_path = Path(__file__).parents[2] / "docs" / "alexa" / "interaction_model.json"
    model = json.loads(model_path.read_text())["interactionModel"]["languageModel"]
    assert model["invocationName"] == "on air"
    intents = {i["name"]: i for i in model["intents"]}
    play = intents["PlayShowIntent"]
    assert play["slots"] == [{"name": "query", "type": "AMAZON.SearchQuery"}]
    assert all("{query}" in s and s != "{query}" for s in play["samples"])
    for name in (
        "AMAZON.PauseIntent",
        "AMAZON.ResumeIntent",
        "AMAZON.StopIntent",
        "AMAZON.CancelIntent",
        "AMAZON.NextIntent",
        "AMAZON.HelpIntent",
        "AMAZON.FallbackIntent",
    ):
        assert name in intents, name


class _Output:
    def __init__(self, speakers: int) -> None:
        self.audience = Audience(stream=2, smart_speaker=speakers)


def test_an_echo_the_streams_already_count_is_counted_once() -> None:
    feed = ProgramFeed(7)
    playback = SpeakerPlayback(lambda show_id: feed if show_id == 7 else None)
    playback.started("echo-kitchen", 7)
    assert feed.audience().smart_speaker == 1
    assert feed.audience().joins == 1
    # The Echo's own GET of /listen/7.aac, its User-Agent naming AlexaMediaPlayer: the mount
    # counts it, and the Alexa report adds nothing more.
    feed.shared("icecast.aac", lambda: _Output(speakers=1))
    assert feed.audience().smart_speaker == 1
    # A second Echo whose stream the mount does not see (a proxy rewrote its User-Agent).
    playback.started("echo-office", 7)
    assert feed.audience().smart_speaker == 2
    assert feed.audience().joins == 2
    # The kitchen Echo moves to another show: it leaves this one.
    playback.started("echo-kitchen", 8)
    assert feed.audience().smart_speaker == 1
    playback.stopped("echo-office")
    playback.stopped("echo-office")  # twice: nothing more to take away
    assert feed.audience().smart_speaker == 1  # the mount's own, until its listener leaves
    assert playback.playing("echo-kitchen") == 8


def test_an_echo_playing_over_the_wire_is_one_smart_speaker(tmp_path: Path) -> None:
    """A real server: the skill is told playback started, and the "Echo" (AlexaMediaPlayer's
    User-Agent) reads the AAC stream it was given; the show has one smart-speaker listener."""
    settings = Settings(data_dir=tmp_path / "var", alexa_verify=False, public_url=PUBLIC)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    with serve(create_app(settings)) as server, httpx.Client(base_url=server.url) as http:
        http.post(
            "/api/v1/accounts/signup",
            json={"username": "wire_host", "email": "wire@example.org", "password": "password-1"},
        )
        show_id = http.post("/api/v1/shows", json={"title": "Wire Jazz"}).json()["id"]
        assert http.post(f"/api/v1/shows/{show_id}/live").status_code == 200
        station = server.app.state.onair.stations.get(show_id)
        started = json.dumps(recorded("playback_started", show_id)).encode()
        assert http.post("/integrations/alexa", content=started).status_code == 200
        assert station.audience().smart_speaker == 1
        echo = {
            "user-agent": "AlexaMediaPlayer/2.1.4676.0 (Linux;Android 5.1.1) ExoPlayerLib/1.5.9"
        }
        with http.stream("GET", f"/listen/{show_id}.aac", headers=echo, timeout=10) as r:
            assert r.status_code == 200
            next(r.iter_raw())  # audio arrives: the mount has the Echo
            audience = station.audience()
            assert (audience.smart_speaker, audience.stream) == (1, 0)
        stopped = json.dumps(recorded("playback_stopped", show_id)).encode()
        assert http.post("/integrations/alexa", content=stopped).status_code == 200
        assert http.post(f"/api/v1/shows/{show_id}/end").status_code == 200


def test_by_default_only_the_public_roots_are_trusted(chain: Chain) -> None:
    """certifi's Mozilla bundle (Amazon's roots among them) loads, and a chain under a root of
    our own making does not lead to it."""
    verifier = SignatureVerifier(fetch=lambda url: chain.pem)
    with pytest.raises(VerificationException, match="not valid"):
        verifier._validate_cert_chain(chain.pem)
    names = {r.subject.rfc4514_string() for r in mozilla_roots()}
    assert any("Amazon Root CA 1" in name for name in names)
    assert any("Starfield Services Root" in name for name in names)  # cross-signs Amazon's
