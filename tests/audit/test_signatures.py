"""Signed statements with real SSH keys (ssh-keygen -Y): who a key proves, and each tamper its own message."""

import pytest
from conftest import allowed_line, make_key

from runner.audit import signatures
from runner.errors import SignoffError

PEOPLE = ("alice@bank.example", "bob@bank.example")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Alice and Bob in the allowed-signers file; Mallory's key is not."""
    folder = tmp_path_factory.mktemp("keys")
    made = {name: make_key(folder, name) for name in (*PEOPLE, "mallory@elsewhere.example")}
    allowed = folder / "allowed_signers"
    allowed.write_text("".join(allowed_line(name, made[name]) for name in PEOPLE))
    return made, allowed


ENTRY = {"event": "approved", "model": "credit", "version": "2", "run_id": "20261127T020000Z-aaaa", "by": PEOPLE[1],
         "note": "looks right", "waivers": [], "at": "2026-11-27T02:00:00+00:00", "model_sha256": "ab" * 32}


def test_a_key_proves_its_principal_and_a_stranger_s_key_proves_nothing(keys):
    made, allowed = keys
    assert signatures.principal(made[PEOPLE[0]], allowed) == PEOPLE[0]
    with pytest.raises(SignoffError, match="its public key is not in"):
        signatures.principal(made["mallory@elsewhere.example"], allowed)
    with pytest.raises(SignoffError, match="no allowed-signers file"):
        signatures.principal(made[PEOPLE[0]], None)


def test_a_signed_line_verifies_and_each_tamper_has_its_own_message(keys):
    made, allowed = keys
    line = signatures.signed(ENTRY, "11" * 32, made[PEOPLE[1]], allowed)
    assert signatures.check(line, "11" * 32, allowed) is None
    assert "edited after bob@bank.example signed it (note differ" in signatures.check(
        {**line, "note": "rubber stamp"}, "11" * 32, allowed)
    assert "a signature moved here from another decision" in signatures.check(
        {**line, "run_id": "20261127T030000Z-bbbb"}, "11" * 32, allowed)
    assert "re-sealed after bob@bank.example signed it" in signatures.check(line, "22" * 32, allowed)
    assert "the line says 'alice@bank.example'" in signatures.check({**line, "by": PEOPLE[0]}, "11" * 32, allowed)
    forged = signatures.signed({**ENTRY, "by": PEOPLE[0]}, "11" * 32, made["mallory@elsewhere.example"], allowed)
    assert "signed by a key not in" in signatures.check(forged, "11" * 32, allowed)


def test_the_allowed_signers_file_comes_from_the_environment_first_and_must_exist(keys, monkeypatch, tmp_path):
    _, allowed = keys
    assert signatures.allowed_signers({"allowed_signers": str(allowed)}) == allowed
    assert signatures.allowed_signers({}) is None
    monkeypatch.setenv(signatures.ENVIRONMENT, str(tmp_path / "nowhere"))
    with pytest.raises(SignoffError, match="SIGNOFF_ALLOWED_SIGNERS: .*nowhere: no such allowed-signers file"):
        signatures.allowed_signers({"allowed_signers": str(allowed)})
