"""Amounts are read by our own grammar, exactly, from the digits the client sent."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from keel.coinpay.api.schemas import CreatePaymentBody, SimulateBody
from keel.coinpay.errors import InvalidAmount
from keel.coinpay.money import (
    MAX_DECIMAL_CHARS,
    MAX_FIAT,
    MAX_MAGNITUDE,
    MIN_MAGNITUDE,
    parse_decimal,
    parse_fiat,
)
from keel.core.jsonbody import JsonNumber, loads_request_json
from tests.coinpay.conftest import Harness

# --- The grammar -----------------------------------------------------------------------------


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    """Text in JSON's number grammar, built from its parts (not from the regex under test)."""
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.sampled_from(["0", *(str(d) for d in range(1, 10))]))
    whole += draw(st.text("0123456789", max_size=12)) if whole != "0" else ""
    fraction = draw(st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=25)))
    exponent = draw(st.one_of(st.just(""), st.integers(-120, 120).map(str)))
    mark = draw(st.sampled_from(["e", "E"]))
    plus = draw(st.sampled_from(["", "+"]))
    text = sign + whole + (f".{fraction}" if fraction else "")
    if exponent:
        text += mark + (plus if not exponent.startswith("-") else "") + exponent
    return text


def oracle(text: str) -> Decimal | None:
    """What the grammar should accept, decided independently: exactly the texts the standard
    library's strict JSON parser reads as one number (no surrounding space, no NaN), of at
    most 64 characters and an exponent of at most two digits."""
    if text != text.strip(" \t\r\n") or len(text) > MAX_DECIMAL_CHARS:
        return None
    _mantissa, e, exponent = text.lower().partition("e")
    if e and len(exponent.lstrip("+-")) > 2:
        return None

    def refuse(_: str) -> Any:
        raise ValueError

    try:
        value = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=refuse)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, Decimal) else None


@given(decimal_texts())
@example("19.99")
@example("1e-7")
@example("0.1000000000000000055511151231257827021181583404541015625")
def test_the_grammar_reads_every_decimal_text_exactly(text: str) -> None:
    expected = oracle(text)
    if expected is None:  # beyond the length or exponent bounds
        with pytest.raises(InvalidAmount):
            parse_decimal(text)
        return
    parsed = parse_decimal(text)
    assert parsed.as_tuple() == Decimal(text).as_tuple()  # same digits, same exponent


NEAR_MISSES = st.text(alphabet="0123456789.eE+-_ \t\nxXabfnNIiy\u0660\uff11", max_size=24)


@given(st.one_of(NEAR_MISSES, st.text(max_size=24), decimal_texts()))
@example("2_5")
@example(" 25")
@example("25 ")
@example("+25")
@example("NaN")
@example("Infinity")
@example("-Infinity")
@example("0x19")
@example("")
@example("1e999999")
@example(".5")
@example("5.")
@example("025")
@example("\u0662\u0665")  # Arabic-Indic digits: Decimal() takes them
def test_the_grammar_accepts_exactly_json_numbers(text: str) -> None:
    expected = oracle(text)
    if expected is None:
        with pytest.raises(InvalidAmount):
            parse_decimal(text)
    else:
        assert parse_decimal(text).as_tuple() == expected.as_tuple()


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_every_decimal_round_trips_through_its_text_or_is_refused(value: Decimal) -> None:
    text = str(value)
    if oracle(text) is None:
        with pytest.raises(InvalidAmount):
            parse_decimal(text)
    else:
        assert parse_decimal(text).as_tuple() == value.as_tuple()


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_a_json_number_is_read_exactly_within_its_bounds(value: Decimal) -> None:
    if value and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
        with pytest.raises(InvalidAmount):
            parse_decimal(value)
    else:
        assert parse_decimal(value).as_tuple() == value.as_tuple()


@given(st.integers(-(10**70), 10**70))
def test_json_integers_are_exact_within_the_bounds(value: int) -> None:
    if abs(value) > MAX_MAGNITUDE:
        with pytest.raises(InvalidAmount):
            parse_decimal(value)
    else:
        assert parse_decimal(value) == Decimal(value)


@pytest.mark.parametrize(
    "value", [19.99, 0.5, True, None, [], {"amount": 1}, Decimal("NaN"), Decimal("-Infinity")]
)
def test_anything_but_text_int_or_decimal_is_refused(value: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_decimal(value)


# --- From raw JSON to Decimal ----------------------------------------------------------------


@given(decimal_texts())
@example("0.123456789012345678")  # 18 significant digits: a float keeps ~17
@example("100.000000000000000001")  # a float rounds it to 100.0
def test_json_numbers_reach_the_model_exactly(text: str) -> None:
    value = Decimal(text)
    if value and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
        return
    body = loads_request_json(f'{{"amount_crypto": {text}}}')
    number = body["amount_crypto"]
    assert isinstance(number, JsonNumber | int)
    parsed = SimulateBody.model_validate(body).amount_crypto
    assert parsed is not None
    if isinstance(number, int):  # JSON integers are ints: "-0" is 0
        assert parsed == Decimal(text)
    else:
        assert parsed.as_tuple() == Decimal(text).as_tuple()


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1" * 101])
def test_request_json_refuses_what_rfc_8259_does_not_allow(raw: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_request_json(f'{{"amount": {raw}}}')


def test_a_json_number_still_behaves_as_the_float_it_was() -> None:
    value = loads_request_json('{"m": 19.99}')["m"]
    assert value == 19.99
    assert json.dumps(value) == "19.99"  # metadata is stored as before


# --- Over HTTP -------------------------------------------------------------------------------


async def _create(harness: Harness, raw_amount: str, **extra: Any) -> Any:
    fields = {"business_id": harness.business_id, "currency": "USD", "blockchain": "BTC"}
    body = json.dumps({**fields, **extra})[:-1] + f', "amount": {raw_amount}}}'
    return await harness.client.post(
        "/api/payments/create",
        content=body.encode(),
        headers={**harness.auth(), "content-type": "application/json"},
    )


async def _count(harness: Harness) -> int:
    reply = await harness.client.get("/api/payments", headers=harness.auth())
    return len(reply.json()["payments"])


BAD_AMOUNTS = [
    '"2_5"',
    '" 25"',
    '"25 "',
    '"+25"',
    '"NaN"',
    '"Infinity"',
    '"0x19"',
    '""',
    '"1e999999"',
    '"1e-999999"',
    '"1e100"',
    "1e-91",
    "1e61",
    '".5"',
    '"\u0662\u0665"',
    "NaN",
    "Infinity",
    "1e999999",
    "100.000000000000000001",  # would be 100 through a float
    "true",
    "null",
    "[25]",
]


@pytest.mark.parametrize("raw", BAD_AMOUNTS)
async def test_bad_amounts_are_a_400_and_create_nothing(harness: Harness, raw: str) -> None:
    before = await _count(harness)
    reply = await _create(harness, raw)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert await _count(harness) == before


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("25", "25"),
        ("19.99", "19.99"),
        ('"19.99"', "19.99"),
        ("1999e-2", "19.99"),
        ('"1.5E+1"', "15"),
        ("0.10", "0.10"),
    ],
)
async def test_what_real_clients_send_is_accepted_exactly(
    harness: Harness, raw: str, expected: str
) -> None:
    reply = await _create(harness, raw)
    assert reply.status_code == 201, reply.text
    payment = json.loads(reply.content, parse_float=Decimal)["payment"]
    assert payment["amount"] == Decimal(expected)


async def test_a_small_crypto_amount_from_javascript_is_read_exactly(harness: Harness) -> None:
    payment = await harness.create_payment(blockchain="ETH")
    # JavaScript writes 1e-7 for 0.0000001; 18 significant digits survive no float.
    for raw in ("1e-7", "0.123456789012345678"):
        reply = await harness.client.post(
            f"/api/payments/{payment['id']}/simulate",
            content=f'{{"amount_crypto": {raw}, "confirmations": 0}}'.encode(),
            headers={**harness.auth(), "content-type": "application/json"},
        )
        assert reply.status_code == 200, reply.text
    events = await harness.client.get(
        f"/api/payments/{payment['id']}/events", headers=harness.auth()
    )
    # 1e-7 ETH is 10**11 wei: the two transfers add up to the wei, none lost to a float.
    assert f'"received":"{10**11 + 123456789012345678}"' in events.text


# --- A JavaScript number's rounding noise --------------------------------------------------
# CoinPay's SDK sends amounts as JavaScript numbers. Python's float is the same IEEE-754 double
# and json.dumps writes it with repr, the shortest text that reads back as the same double, as
# JavaScript's JSON.stringify does; so Python float arithmetic plays the shop's checkout here.


def _fiat_from_json(raw: str, currency: str = "USD") -> Decimal:
    """What the create route does with a raw JSON amount: read it at the edge, then judge it."""
    body = loads_request_json(
        f'{{"business_id": "b", "blockchain": "BTC", "currency": "{currency}", "amount": {raw}}}'
    )
    model = CreatePaymentBody.model_validate(body)
    return parse_fiat(model.amount, model.currency)[0]


@st.composite
def js_totals(draw: st.DrawFn) -> tuple[str, Decimal]:
    """A cart of up to 8 lines, each a price in whole cents times a small quantity, totalled
    as a browser would (price literals are doubles, then multiply and add): the JSON text the
    SDK sends and the exact total in Decimal."""
    lines = draw(
        st.lists(
            st.tuples(st.integers(1, 10**9), st.integers(1, 12)),  # up to $10M x 12
            min_size=1,
            max_size=8,
        )
    )
    total_float = 0.0
    for cents, quantity in lines:
        total_float += (cents / 100) * quantity  # cents / 100 is the literal's double
    exact = sum((Decimal(cents) * quantity for cents, quantity in lines), Decimal(0)) / 100
    return json.dumps(total_float), exact


@given(js_totals())
@example(("59.97000000000001", Decimal("59.97")))  # issue 10's report
@example((json.dumps(0.1 + 0.2), Decimal("0.30")))
@example((json.dumps(1.15 * 3), Decimal("3.45")))  # 3.4499999999999997: noise below the cent
@example((json.dumps(27010302.05 * 9), Decimal("243092718.45")))  # 2e-8 off: more than 1e-9
def test_a_javascript_total_of_whole_cents_is_read_as_the_exact_total(
    total: tuple[str, Decimal],
) -> None:
    raw, exact = total
    if exact > MAX_FIAT:
        return
    amount = _fiat_from_json(raw)
    assert amount == exact
    assert amount.as_tuple().exponent == -2  # cents, as the currency has them


@given(
    st.integers(1, 10**12).filter(lambda mills: mills % 10),  # up to $1e9, never a whole cent
    st.sampled_from(["decimal", "double", "double_times_3"]),
)
@example(10005, "decimal")  # 10.005 USD
@example(3335, "double_times_3")  # 3.335 * 3 is 10.004999999999999: noise on a real third decimal
def test_a_genuine_third_decimal_is_always_refused(mills: int, spelling: str) -> None:
    if spelling == "decimal":
        raw = str(Decimal(mills).scaleb(-3))
    elif spelling == "double":
        raw = json.dumps(mills / 1000)
    else:
        raw = json.dumps(mills / 1000 * 3)
    if Decimal(raw) > MAX_FIAT:
        return
    with pytest.raises(InvalidAmount, match="more than 2 decimal places for USD"):
        _fiat_from_json(raw)


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("3.4499999999999997", "USD", "3.45"),
        ("2178.0000000000005", "JPY", "2178"),  # 1980 * 1.1, tax included, in yen
        ("2178.0000000000005", "jpy", "2178"),
        ("10.0000000001", "EUR", "10.00"),  # within 1e-9 of a cent
        ("999999999.9899999", "USD", "999999999.99"),  # 1e-7 off: a double's spacing there
    ],
)
def test_a_double_a_hair_from_a_minor_unit_is_that_unit(
    raw: str, currency: str, expected: str
) -> None:
    assert _fiat_from_json(raw, currency).as_tuple() == Decimal(expected).as_tuple()


@pytest.mark.parametrize(
    ("raw", "currency"),
    [
        ('"59.97000000000001"', "USD"),  # a string says exactly what it means
        ("100.000000000000000001", "USD"),  # 21 digits: no double is written so
        ("10.000000002", "USD"),  # 2e-9 from a cent, at an amount where doubles are finer
        ("0.30000000000000004", "JPY"),  # nowhere near a yen
        ("2178.5", "JPY"),
        ("5.551115123125783e-17", "USD"),  # 0.1 + 0.2 - 0.3: noise around nothing is not 0.01
    ],
)
def test_what_is_not_a_doubles_noise_is_judged_as_written(raw: str, currency: str) -> None:
    with pytest.raises(InvalidAmount):
        _fiat_from_json(raw, currency)


def test_a_crypto_amount_keeps_a_doubles_noise() -> None:
    # 0.1 + 0.2 ETH is 300000000000000040 wei, a whole number of wei: nothing tells noise from
    # intent at 18 decimals, so crypto amounts are read exactly as sent, noise and all.
    body = loads_request_json(f'{{"amount_crypto": {json.dumps(0.1 + 0.2)}}}')
    assert SimulateBody.model_validate(body).amount_crypto == Decimal("0.30000000000000004")


async def test_a_javascript_total_creates_a_payment_for_the_cents_it_meant(
    harness: Harness,
) -> None:
    reply = await _create(harness, "59.97000000000001")
    assert reply.status_code == 201, reply.text
    payment = json.loads(reply.content, parse_float=Decimal)["payment"]
    assert payment["amount"] == Decimal("59.97")
    assert payment["currency"] == "USD"
    fetched = await harness.client.get(f"/api/payments/{payment['id']}", headers=harness.auth())
    stored = json.loads(fetched.content, parse_float=Decimal)["payment"]
    assert stored["amount"] == Decimal("59.97")


@pytest.mark.parametrize("raw", ["10.005", '"10.005"', '"59.97000000000001"'])
async def test_a_genuine_third_decimal_is_a_400_that_says_so(harness: Harness, raw: str) -> None:
    before = await _count(harness)
    reply = await _create(harness, raw)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["code"] == "invalid_amount"
    assert problem["detail"] == "amount has more than 2 decimal places for USD"
    assert await _count(harness) == before


# --- Unknown fields --------------------------------------------------------------------------


async def test_unknown_fields_on_create_are_a_400_that_names_them(harness: Harness) -> None:
    before = await _count(harness)
    reply = await _create(harness, '"10"', ammount="10", colour="red")
    assert reply.status_code == 400, reply.text
    detail = reply.json()["detail"]
    assert "ammount" in detail
    assert "colour" in detail
    assert await _count(harness) == before


async def test_fields_coinpay_clients_send_are_accepted(harness: Harness) -> None:
    # The CLI sends business_id, amount, currency, blockchain, description, metadata; the API
    # documents merchant_wallet_address and expires_in_minutes too.
    payment = await harness.create_payment(
        description="Order 9",
        metadata={"order": "9", "total": 19.99},
        expires_in_minutes=30,
        merchant_wallet_address="bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
    )
    assert payment["metadata"] == {"order": "9", "total": 19.99}


def test_the_create_body_lists_every_field_it_accepts() -> None:
    assert set(CreatePaymentBody.model_fields) == {
        "business_id",
        "amount",
        "currency",
        "blockchain",
        "description",
        "metadata",
        "expires_in_minutes",
        "merchant_wallet_address",
    }
