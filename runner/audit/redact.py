"""Keep secrets out of everything Signoff writes: params, notebooks, HTML, logs, provenance.

A secret is the value of an environment variable whose name looks secret
(``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*KEY*``, ...) or the credentials of a
URI (``https://user:pass@host``).  Notebooks may print, raise or receive a secret
in ways Signoff cannot foresee, so besides redacting what it writes itself, the
whole run folder is scrubbed before its manifest is taken.  A value is matched
only where it does not continue a longer word, and values shorter than
``MIN_LENGTH`` are left alone (with a warning naming the variable): replacing
``true`` or ``1234`` everywhere would corrupt notebooks and images.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|KEY|CREDENTIAL", re.IGNORECASE)
MIN_LENGTH = 8
MASK = "***"
# scheme://user:password@ or scheme://token@ inside any text
URI_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@\"'<>]+@")


def redact_uri(uri: str) -> str:
    """A URI fit to print or archive: ``https://user:pass@host`` loses its credentials."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Redactor:
    """The secret values of one process's environment, ready to be searched for."""

    names: tuple[str, ...] = ()  # variables whose values are redacted
    too_short: tuple[str, ...] = ()  # variables that look secret but whose values are too short to match safely
    pattern: re.Pattern | None = field(default=None, repr=False)

    def text(self, text: str) -> str:
        text = without_uri_credentials(text)
        return self.pattern.sub(MASK, text) if self.pattern else text

    def value(self, value: Any) -> Any:
        """``value`` with every string in it redacted: params and records about to be written."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def folder(self, folder: Path, moved_to: Path | None = None) -> list[Path]:
        """Scrub every text file under ``folder`` in place; returns the files that changed.  With ``moved_to``,
        the folder's own path is written as the path it is about to move to: an archived notebook names its
        final run folder, never the temporary one it ran in."""
        return [path for path in sorted(p for p in folder.rglob("*") if p.is_file())
                if self.file(path, folder, moved_to)]

    def file(self, path: Path, folder: Path, moved_to: Path | None = None) -> bool:
        """Scrub one file of ``folder`` as :meth:`folder` does; whether it changed."""
        try:
            original = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return False  # Parquet, images: written by Signoff's own code from data, not from the environment
        scrubbed = self.text(original)
        if moved_to is not None:
            scrubbed = scrubbed.replace(str(folder), str(moved_to))
        if scrubbed == original:
            return False
        path.write_text(scrubbed, encoding="utf-8")
        return True


def without_uri_credentials(text: str) -> str:
    """``text`` with every URI's credentials masked.  A match never spans lines (whitespace ends one), so only
    the lines holding ``://`` are searched: the pattern's attempts along every long base64 line of an embedded
    image took two thirds of the time a run's folder took to scrub."""
    if "://" not in text:
        return text
    return "\n".join(URI_CREDENTIALS.sub(rf"\g<1>{MASK}@", line) if "://" in line else line
                     for line in text.split("\n"))


def from_environment(environ: Mapping[str, str] | None = None) -> Redactor:
    environ = os.environ if environ is None else environ
    secret = {name: value for name, value in environ.items() if SECRET_NAME.search(name) and value}
    usable = {name: value for name, value in secret.items() if len(value) >= MIN_LENGTH}
    forms = {form for value in usable.values() for form in _written_forms(value)}
    pattern = None
    if forms:
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
    return Redactor(tuple(sorted(usable)), tuple(sorted(set(secret) - set(usable))), pattern)


def _written_forms(value: str) -> set[str]:
    """The value as it appears in plain text, inside a JSON string, and in HTML."""
    return {value, json.dumps(value)[1:-1], html.escape(value), html.escape(json.dumps(value)[1:-1])}
