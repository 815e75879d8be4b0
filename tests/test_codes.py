import os
import secrets
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couponsvc import codes

bodies = st.text(alphabet=codes.ALPHABET, min_size=codes.LENGTH - 1, max_size=codes.LENGTH - 1)
valid_codes = bodies.map(lambda body: body + codes.check_symbol(body))


def weighted_sum(code: str) -> int:
    """The checksum as the module docstring defines it, computed independently."""
    return sum(i * codes.ALPHABET.index(c) for i, c in enumerate(code, start=1)) % 31


def reason_of(text: str) -> str:
    with pytest.raises(codes.CodeError) as caught:
        codes.canonical(text)
    return caught.value.reason


def test_alphabet_has_31_unambiguous_symbols():
    assert len(set(codes.ALPHABET)) == len(codes.ALPHABET) == 31
    assert not set("01OIL") & set(codes.ALPHABET)
    assert codes.ALPHABET.isupper()


def test_entropy_of_a_code_is_at_least_50_bits():
    assert codes.LENGTH == 12
    assert abs(codes.RANDOM_BITS - 11 * 4.954) < 0.01
    assert codes.RANDOM_BITS >= 50


@given(valid_codes)
def test_a_completed_code_has_weighted_sum_zero(code):
    assert weighted_sum(code) == 0
    assert codes.canonical(code) == code
    assert codes.is_valid(code)


@given(valid_codes)
def test_every_single_substitution_fails_the_check(code):
    for position in range(codes.LENGTH):
        for symbol in codes.ALPHABET:
            if symbol != code[position]:
                typo = code[:position] + symbol + code[position + 1 :]
                assert reason_of(typo) == "check"


@given(valid_codes)
def test_every_adjacent_transposition_fails_the_check(code):
    for position in range(codes.LENGTH - 1):
        a, b = code[position], code[position + 1]
        if a != b:
            typo = code[:position] + b + a + code[position + 2 :]
            assert reason_of(typo) == "check"


@given(valid_codes, st.data())
def test_every_distant_transposition_fails_the_check_too(code, data):
    i = data.draw(st.integers(0, codes.LENGTH - 2))
    j = data.draw(st.integers(i + 1, codes.LENGTH - 1))
    if code[i] != code[j]:
        swapped = list(code)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        assert reason_of("".join(swapped)) == "check"


@given(valid_codes)
def test_canonical_accepts_what_people_type(code):
    assert codes.canonical(code.lower()) == code
    assert codes.canonical(" ".join([code[:4], code[4:8], code[8:]])) == code
    assert codes.canonical(f"  {code[:6]}-{code[6:]}\n") == code
    assert codes.canonical(codes.display(code)) == code
    assert codes.canonical(codes.display(code).lower()) == code


@given(valid_codes)
def test_display_groups_by_four_and_round_trips(code):
    shown = codes.display(code)
    assert shown == f"{code[:4]}-{code[4:8]}-{code[8:]}"
    assert codes.display(shown) == shown


@pytest.mark.parametrize(
    "separator",
    [
        "\uff0d",  # full-width hyphen-minus
        "\u3000",  # ideographic space
        "\u2010",  # hyphen
        "\u2013",  # en dash
        "\u2014",  # em dash
        "\u2212",  # minus sign
        "\u00a0",  # no-break space
        "\u200b",  # zero-width space
        "\t",
    ],
)
def test_canonical_accepts_unicode_separators(separator):
    code = codes.generate()
    assert codes.canonical(code[:4] + separator + code[4:8] + separator + code[8:]) == code


def test_canonical_accepts_full_width_letters_and_digits():
    code = codes.generate()
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code.lower())
    assert codes.canonical(full_width) == code


@pytest.mark.parametrize("text", ["", "ABC", "K7QM-3XPA-9RT", "K7QM3XPA9RT2K", "x" * 1000])
def test_wrong_length_is_refused(text):
    assert reason_of(text) == "length"


@pytest.mark.parametrize("look_alike", "01OIL!é")
def test_symbols_outside_the_alphabet_are_refused(look_alike):
    code = codes.generate()
    assert reason_of(look_alike + code[1:]) == "character"
    assert reason_of(code[:7] + look_alike + code[8:]) == "character"


def test_code_error_is_a_value_error_with_a_declared_reason():
    with pytest.raises(ValueError) as caught:
        codes.canonical("O" * 12)
    assert caught.value.reason in codes.CodeError.REASONS
    assert str(caught.value)


def test_is_valid():
    code = codes.generate()
    assert codes.is_valid(code)
    assert codes.is_valid(codes.display(code).lower())
    assert not codes.is_valid(code[:-1])
    assert not codes.is_valid(None)


def test_display_refuses_an_invalid_code():
    with pytest.raises(codes.CodeError):
        codes.display("K7QM-3XPA-9RT")


def test_check_symbol_refuses_a_wrong_body():
    with pytest.raises(ValueError):
        codes.check_symbol("ABC")
    with pytest.raises(ValueError):
        codes.check_symbol("O" * 11)


def test_generate_returns_a_canonical_code():
    code = codes.generate()
    assert len(code) == codes.LENGTH
    assert codes.canonical(code) == code


def test_generate_many_returns_distinct_valid_codes():
    batch = codes.generate_many(10_000)
    assert len(batch) == 10_000
    assert len(set(batch)) == 10_000
    assert all(codes.canonical(code) == code for code in batch)


def test_generate_many_edge_counts():
    assert codes.generate_many(0) == []
    assert len(codes.generate_many(1)) == 1
    with pytest.raises(ValueError):
        codes.generate_many(-1)


def test_generate_many_spans_chunks(monkeypatch):
    monkeypatch.setattr(codes, "_CHUNK", 7)
    batch = codes.generate_many(100)
    assert len(set(batch)) == 100
    assert all(map(codes.is_valid, batch))


def test_symbols_are_uniform():
    # Catches modulo bias: 110,000 random symbols put ~3,548 on each of 31; a biased
    # mapping of 256 byte values would give 9 of them 3/31 more (~ +330).
    counts = Counter("".join(code[:-1] for code in codes.generate_many(10_000)))
    assert set(counts) == set(codes.ALPHABET)
    expected = 10_000 * 11 / 31
    assert all(abs(n - expected) < 0.08 * expected for n in counts.values())


def test_duplicates_within_a_batch_are_replaced(monkeypatch):
    calls = []

    def first_call_all_zero(size):
        calls.append(size)
        return bytes(size) if len(calls) == 1 else os.urandom(size)

    monkeypatch.setattr(secrets, "token_bytes", first_call_all_zero)
    batch = codes.generate_many(50)
    assert len(calls) > 1
    assert "22222222222" + codes.check_symbol("2" * 11) in batch
    assert len(set(batch)) == 50
    assert all(map(codes.is_valid, batch))


def test_bytes_that_would_bias_the_draw_are_rejected(monkeypatch):
    def three_in_four_rejected(size):
        # Every fourth byte is below 248 and maps to a letter (value 8..30); the others
        # (248..255) would map to the digits 2..9 if they were used instead of skipped.
        noise = os.urandom(size)
        return bytes(
            31 * (b % 8) + 8 + b % 23 if i % 4 == 0 else 248 + b % 8 for i, b in enumerate(noise)
        )

    monkeypatch.setattr(secrets, "token_bytes", three_in_four_rejected)
    batch = codes.generate_many(500)
    assert len(set(batch)) == 500
    assert all(map(codes.is_valid, batch))
    assert set("".join(code[:-1] for code in batch)) <= set(codes.ALPHABET[8:])
