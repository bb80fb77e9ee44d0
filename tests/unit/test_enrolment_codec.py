"""The enrolment codec: canonical bodies, the content digest, deltas, strict decoding."""

from __future__ import annotations

import contextlib
import dataclasses
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminald.enrolment.codec import (
    EnrolmentDelta,
    apply_delta,
    content_digest,
    decode_content,
    decode_delta,
    decode_person_record,
    diff,
    encode_content,
    encode_delta,
    encode_person_record,
)
from terminald.enrolment.errors import EnrolmentFormatError
from terminald.enrolment.model import Credential, EnrolmentContent, Person

from .enrolment_support import ROOT_A, contents, small_content

SETTINGS = settings(max_examples=60, deadline=None)


def test_a_small_content_round_trips_and_names_its_issuer_once() -> None:
    content = small_content()
    body = encode_content(content)
    assert decode_content(body) == content
    assert body.count(ROOT_A) == 1  # the issuer table, not per card


@SETTINGS
@given(contents())
def test_every_content_round_trips(content: EnrolmentContent) -> None:
    assert decode_content(encode_content(content)) == content


@SETTINGS
@given(contents(), st.randoms(use_true_random=False))
def test_the_digest_does_not_depend_on_dict_order(
    content: EnrolmentContent, rng: random.Random
) -> None:
    def shuffled(d: dict) -> dict:  # type: ignore[type-arg]
        items = list(d.items())
        rng.shuffle(items)
        return dict(items)

    other = EnrolmentContent(
        shuffled(content.people),
        shuffled(content.credentials),
        shuffled(content.schedules),
        content.calendar,
    )
    assert content_digest(other) == content_digest(content)


def test_the_digest_changes_with_any_field() -> None:
    content = small_content()
    person = content.people["E2"]
    changed = dataclasses.replace(person, label="x")
    other = EnrolmentContent(
        {**content.people, "E2": changed}, content.credentials, content.schedules, content.calendar
    )
    assert content_digest(other) != content_digest(content)


@SETTINGS
@given(contents(), contents())
def test_a_delta_turns_old_into_new(old: EnrolmentContent, new: EnrolmentContent) -> None:
    delta = diff(old, new)
    assert decode_delta(encode_delta(delta)) == delta
    assert apply_delta(old, delta) == new


def test_a_relink_is_a_delta_of_one_added_certificate() -> None:
    old = small_content()
    credentials = {**old.credentials, (ROOT_A, 9999): Credential(ROOT_A, 9999, "E2")}
    new = dataclasses.replace(old, credentials=credentials)
    delta = diff(old, new)
    assert delta.added_credentials == (Credential(ROOT_A, 9999, "E2"),)
    assert not delta.upserted_people and not delta.removed_credentials
    assert delta.schedules is None and delta.calendar is None


def test_removing_a_subject_removes_their_certificates() -> None:
    old = small_content()
    new = apply_delta(old, EnrolmentDelta(removed_subjects=frozenset({"E1"})))
    assert set(new.people) == {"E2"} and all(c.subject == "E2" for c in new.credentials.values())


@pytest.mark.parametrize(
    ("delta", "problem"),
    [
        (EnrolmentDelta(removed_subjects=frozenset({"E9"})), "removed_subjects: 'E9' is not"),
        (EnrolmentDelta(removed_credentials=frozenset({(ROOT_A, 1)})), "removed_credentials"),
        (
            EnrolmentDelta(added_credentials=(Credential(ROOT_A, 4660, "E2"),)),
            "already enrolled",
        ),
        (EnrolmentDelta(added_credentials=(Credential(ROOT_A, 7, "E9"),)), "not enrolled"),
        (EnrolmentDelta(upserted_people=(Person("E3", schedule="nope"),)), "not defined"),
    ],
)
def test_a_delta_that_does_not_fit_is_refused_naming_the_step(
    delta: EnrolmentDelta, problem: str
) -> None:
    with pytest.raises(EnrolmentFormatError, match=problem):
        apply_delta(small_content(), delta)


def test_an_inconsistent_content_is_not_encoded() -> None:
    content = small_content()
    orphan = {**content.credentials, (ROOT_A, 5): Credential(ROOT_A, 5, "nobody")}
    with pytest.raises(ValueError, match="who is not enrolled"):
        encode_content(dataclasses.replace(content, credentials=orphan))


def _body(content: EnrolmentContent) -> list:  # type: ignore[type-arg]
    return msgpack.unpackb(encode_content(content))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda b: b.__setitem__(0, 2), "body.format"),
        (lambda b: b.__setitem__(1, "delta"), "body.kind"),
        (lambda b: b[2].reverse(), "issuers[1]"),
        (lambda b: b[4].reverse(), "people[1].subject"),
        (lambda b: b[4][0][7][0].__setitem__(0, 9), "people[0].cards[0].issuer"),
        (lambda b: b[4][0][7][0].__setitem__(1, -1), "people[0].cards[0].serial"),
        (lambda b: b[4][0].__setitem__(0, ""), "people[0].subject"),
        (lambda b: b[4][0].__setitem__(2, [0, 0]), "people[0].groups[1]"),
        (lambda b: b[4][0].__setitem__(6, [[200, 1]]), "people[0].ages[0].age"),
        (lambda b: b[4][0].__setitem__(5, 1), "people[0].valid_until"),
        (lambda b: b[5][0][1].pop(), "schedules[0]"),
        (lambda b: b[4][1][7].append(b[4][0][7][0]), "people[1].cards[1]"),
    ],
)
def test_a_bad_body_names_the_field(mutate, where: str) -> None:  # type: ignore[no-untyped-def]
    body = _body(small_content())
    mutate(body)
    with pytest.raises(EnrolmentFormatError) as caught:
        decode_content(msgpack.packb(body))
    assert str(caught.value).startswith(where), str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_the_format_error_only(data: bytes) -> None:
    for decode in (decode_content, decode_delta, decode_person_record):
        with contextlib.suppress(EnrolmentFormatError):
            decode(data)


def test_a_huge_announced_array_is_refused_without_allocating() -> None:
    bomb = b"\xdd\xff\xff\xff\xff"  # an array of 2**32-1 entries, in five bytes
    with pytest.raises(EnrolmentFormatError, match="body"):
        decode_content(bomb)


def test_a_person_record_round_trips() -> None:
    person = small_content().people["E1"]
    assert decode_person_record(encode_person_record(person)) == person
