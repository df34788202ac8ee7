"""Is this request really from Alexa, for our skill? The checks Amazon requires of a skill
hosted as a web service, through the Alexa Skills Kit SDK's own verifiers.

`SignatureVerifier` is the SDK's `RequestVerifier`: the `SignatureCertChainUrl` must be
https://s3.amazonaws.com[:443]/echo.api/…, the chain it names must be in date, name
echo-api.amazon.com and lead to a trusted root, and `Signature-256` must be the chain's
SHA-256 with RSA signature of the raw body. Two of its steps are replaced so tests (and
operators behind a proxy) can choose: fetching the chain (`fetch_chain`) and the roots it must
lead to (`trust_roots`, by default certifi's Mozilla bundle). The SDK validates the path with
`certvalidator`, which trusts the operating system's store through oscrypto; here the path is
validated with cryptography's own X.509 verifier against `trust_roots` instead.

The SDK's `TimestampVerifier` checks the request is at most 150 s old, and `SkillIdVerifier`
that it is meant for `ONAIR_ALEXA_SKILL_ID`.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import certifi
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import DNSName as _SanName
from cryptography.x509.oid import ExtensionOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

if TYPE_CHECKING:
    from ask_sdk_model.request_envelope import RequestEnvelope

log = logging.getLogger("onair.integrations.alexa")

ChainFetcher = Callable[[str], bytes]
"""Certificate chain URL → the PEM chain it serves."""

CERT_DOMAIN = "echo-api.amazon.com"
FETCH_TIMEOUT_S = 5.0
MAX_CHAIN_BYTES = 64 * 1024


def _load_sdk_verifier() -> types.ModuleType:
    """`ask_sdk_webservice_support.verifier`, importable even where oscrypto is not.

    The module imports `certvalidator` at its top, which imports oscrypto, whose release on
    PyPI (1.3.0) cannot read the version string of OpenSSL 3.0.10 and later and fails to
    import (wbond/oscrypto#78, fixed only in its unreleased main branch). Our verifier never
    calls certvalidator (the path is checked with cryptography, below), so where it fails a
    stand-in is put in its place for the length of the import and taken out again after.
    """
    name = "ask_sdk_webservice_support.verifier"
    if name in sys.modules:
        return sys.modules[name]
    try:
        importlib.import_module("certvalidator")
    except Exception as exc:  # oscrypto's LibraryNotFoundError, or anything like it
        log.debug("certvalidator cannot be imported (%s); not needed here", exc)
        stand_in = types.ModuleType("certvalidator")
        errors = types.ModuleType("certvalidator.errors")

        class _Unavailable:
            def __init__(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError("certvalidator is unavailable: oscrypto cannot load")

        errors.ValidationError = type("ValidationError", (Exception,), {})  # type: ignore[attr-defined]
        errors.PathError = type("PathError", (Exception,), {})  # type: ignore[attr-defined]
        stand_in.CertificateValidator = _Unavailable  # type: ignore[attr-defined]
        stand_in.errors = errors  # type: ignore[attr-defined]
        sys.modules["certvalidator"] = stand_in
        sys.modules["certvalidator.errors"] = errors
        try:
            return importlib.import_module(name)
        finally:
            for key in ("certvalidator", "certvalidator.errors"):
                if sys.modules.get(key) in (stand_in, errors):
                    del sys.modules[key]
    return importlib.import_module(name)


_load_sdk_verifier()

from ask_sdk_webservice_support.verifier import (  # noqa: E402 (after the stand-in)
    AbstractVerifier,
    RequestVerifier,
    TimestampVerifier,
    VerificationException,
)
from ask_sdk_webservice_support.webservice_handler import WebserviceSkillHandler  # noqa: E402

__all__ = [
    "AbstractVerifier",
    "ChainFetcher",
    "SignatureVerifier",
    "SkillIdVerifier",
    "TimestampVerifier",
    "VerificationException",
    "WebserviceSkillHandler",
    "WrongSkill",
    "fetch_chain",
]


def fetch_chain(url: str) -> bytes:
    """GETs a certificate chain (only ever an https://s3.amazonaws.com/echo.api/ URL)."""
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
        data: bytes = response.read(MAX_CHAIN_BYTES + 1)
    if len(data) > MAX_CHAIN_BYTES:
        raise ValueError("certificate chain too large")
    return data


_PEM_END = b"-----END CERTIFICATE-----"


@cache
def mozilla_roots() -> tuple[x509.Certificate, ...]:
    """The roots browsers trust (certifi's bundle), among them Amazon's.

    Six roots there (Starfield Services G2, which cross-signs Amazon's, among them) have a
    serial number RFC 5280 forbids; cryptography still loads them, with a deprecation warning
    that is no news to an operator. A root it ever refuses is left out.
    """
    roots = []
    for block in Path(certifi.where()).read_bytes().split(_PEM_END):
        if b"-----BEGIN CERTIFICATE-----" not in block:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            try:
                roots.append(x509.load_pem_x509_certificate(block + _PEM_END))
            except ValueError:
                continue
    return tuple(roots)


class SignatureVerifier(RequestVerifier):
    """The SDK's signature verifier, with the chain's source and its roots chosen by us."""

    def __init__(
        self,
        *,
        fetch: ChainFetcher = fetch_chain,
        trust_roots: Sequence[x509.Certificate] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._roots = tuple(trust_roots) if trust_roots is not None else None
        self._now = now

    def verify(
        self,
        headers: dict[str, Any],
        serialized_request_env: str,
        deserialized_request_env: RequestEnvelope,
    ) -> None:
        try:
            super().verify(headers, serialized_request_env, deserialized_request_env)
        except VerificationException:
            raise
        except Exception as exc:  # a malformed URL, signature or certificate: not from Alexa
            raise VerificationException(f"request signature not verified: {exc}") from exc

    def _load_cert_chain(self, cert_url: str) -> bytes:
        cached: bytes | None = self._cert_cache.get(cert_url)
        if cached is not None:
            return cached
        try:
            data = self._fetch(cert_url)
        except Exception as exc:
            raise VerificationException(f"cannot fetch the certificate chain: {exc}") from exc
        self._cert_cache[cert_url] = data
        return data

    def _validate_cert_chain(self, cert_chain: bytes) -> None:
        try:
            chain = x509.load_pem_x509_certificates(cert_chain)
        except ValueError as exc:
            raise VerificationException("the certificate chain is not PEM") from exc
        roots = self._roots if self._roots is not None else mozilla_roots()
        verifier = (
            PolicyBuilder()
            .store(Store(list(roots)))
            .time(self._now())
            .build_server_verifier(_SanName(CERT_DOMAIN))
        )
        try:
            verifier.verify(chain[0], chain[1:])
        except VerificationError as exc:
            raise VerificationException(f"certificate chain is not valid: {exc}") from exc
        try:
            usage = chain[0].extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is None or not usage.digital_signature:
            raise VerificationException("the signing certificate may not sign")

    def _validate_end_certificate(self, x509_cert: x509.Certificate) -> None:
        # The SDK's own check, on cryptography's time-zone-aware dates.
        now = self._now()
        if not x509_cert.not_valid_before_utc <= now <= x509_cert.not_valid_after_utc:
            raise VerificationException("signing certificate expired")
        try:
            names = x509_cert.extensions.get_extension_for_oid(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME
            ).value
        except x509.ExtensionNotFound as exc:
            raise VerificationException("signing certificate names no domain") from exc
        assert isinstance(names, x509.SubjectAlternativeName)
        if CERT_DOMAIN not in names.get_values_for_type(x509.DNSName):
            raise VerificationException(f"{CERT_DOMAIN} missing in the signing certificate")


class SkillIdVerifier(AbstractVerifier):
    """Refuses requests meant for another skill (`context.System.application.applicationId`)."""

    def __init__(self, skill_id: str) -> None:
        self.skill_id = skill_id

    def verify(
        self,
        headers: dict[str, Any],
        serialized_request_env: str,
        deserialized_request_env: RequestEnvelope,
    ) -> None:
        context = deserialized_request_env.context
        system = context.system if context is not None else None
        application = system.application if system is not None else None
        got = application.application_id if application is not None else None
        if not self.skill_id or got != self.skill_id:
            raise WrongSkill(f"the request is for skill {got!r}, not this one")


class WrongSkill(VerificationException):
    """A genuine request, for another skill (403 rather than 400)."""
