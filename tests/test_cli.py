"""The CLI a merchant uses on a fresh install, and its answers to bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from keel.cli import app
from keel.coinpay import audit, businesses
from keel.coinpay.app import create_app
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets.families import FEE_WALLET_PATHS
from keel.core.crypto import new_key

ABANDON = " ".join(["abandon"] * 11 + ["about"])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "KEEL_DATA_DIR": str(tmp_path / "var"),
        "KEEL_COINPAY_MASTER_KEY": new_key(),
        "KEEL_COINPAY_DATABASE_URL": "",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_init_with_the_abandon_mnemonic_gives_the_published_first_addresses(
    env: dict[str, str], tmp_path: Path
) -> None:
    mnemonic = tmp_path / "seed.txt"
    mnemonic.write_text(ABANDON + "\n")
    code, out, _ = run(env, "coinpay", "init", "--mnemonic-file", str(mnemonic), "--json")
    assert code == 0
    assert json.loads(out)["created"] is True
    code, out, _ = run(env, "coinpay", "business", "create", "--name", "Shop", "--json")
    business_id = json.loads(out)["business_id"]
    for coin, address in (
        ("BTC", "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"),
        ("ETH", "0x0000000000000000000000000000000000000001"),
        ("SOL", "11111111111111111111111111111112"),
    ):
        code, _, err = run(
            env,
            "coinpay",
            "wallet",
            "set",
            "--business",
            business_id,
            "--coin",
            coin,
            "--address",
            address,
        )
        assert code == 0, err
    code, out, _ = run(
        env, "coinpay", "apikey", "create", "--business", business_id, "--mode", "test", "--json"
    )
    key = json.loads(out)["api_key"]
    assert key.startswith("cp_test_")

    async def first_addresses() -> dict[str, str]:
        settings = CoinpaySettings(master_key=env["KEEL_COINPAY_MASTER_KEY"], run_workers=False)
        product = create_app(settings, data_dir=env["KEEL_DATA_DIR"])
        found = {}
        async with product.lifespan():
            transport = httpx.ASGITransport(app=product.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for coin in ("BTC", "ETH", "SOL"):
                    reply = await client.post(
                        "/api/payments/create",
                        json={"business_id": business_id, "amount": 10, "blockchain": coin},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    assert reply.status_code == 201, reply.text
                    found[coin] = reply.json()["payment"]["payment_address"]
        return found

    assert asyncio.run(first_addresses()) == {
        "BTC": "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        "ETH": "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
        "SOL": "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk",
    }
    code, out, _ = run(env, "coinpay", "payments", "list", "--json")
    assert code == 0
    assert len(json.loads(out)) == 3


def test_fee_wallets_are_shown_once_there_is_a_seed(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = run(env, "coinpay", "fee-wallets")
    assert (code, err.splitlines()[-1]) == (
        2,
        "error: The master seed is not initialised; run `keel coinpay init`.",
    )
    mnemonic = tmp_path / "seed.txt"
    mnemonic.write_text(ABANDON)
    assert run(env, "coinpay", "init", "--mnemonic-file", str(mnemonic))[0] == 0
    code, out, _ = run(env, "coinpay", "fee-wallets", "--json")
    assert code == 0
    wallets = json.loads(out)
    assert wallets["EVM"] == "0x78839F6054d7ed13918bAe0473BA31b1Ca9D7265"  # m/44'/60'/1'/0/0
    assert set(wallets) == set(FEE_WALLET_PATHS) >= {"EVM", "SOL"}


def test_init_again_with_another_seed_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "coinpay", "init")[0] == 0
    other = tmp_path / "other.txt"
    other.write_text(ABANDON)
    code, _, err = run(env, "coinpay", "init", "--mnemonic-file", str(other))
    assert code == 2
    assert err.startswith("error: A different master seed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["coinpay", "wallet", "set", "--business", "nope", "--coin", "BTC", "--address", "x"],
            "error: Business nope not found",
        ),
        (
            ["coinpay", "apikey", "create", "--business", "x", "--mode", "prod"],
            "error: --mode must be 'test' or 'live'",
        ),
        (
            ["coinpay", "business", "create", "--name", "  "],
            "error: Business name must be 1 to 200 characters",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    env: dict[str, str], args: list[str], message: str
) -> None:
    code, _, err = run(env, *args)
    assert code == 2
    assert err.strip().splitlines() == [message]


def test_bad_mnemonic_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("abandon " * 12)
    code, _, err = run(env, "coinpay", "init", "--mnemonic-file", str(bad))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error:")


def test_bad_wallet_address_exits_2(env: dict[str, str]) -> None:
    _, out, _ = run(env, "coinpay", "business", "create", "--name", "S", "--json")
    business_id = json.loads(out)["business_id"]
    code, _, err = run(
        env,
        "coinpay",
        "wallet",
        "set",
        "--business",
        business_id,
        "--coin",
        "BTC",
        "--address",
        "bc1qnotanaddress",
    )
    assert code == 2
    assert err.startswith("error:")
    code, _, err = run(
        env,
        "coinpay",
        "wallet",
        "set",
        "--business",
        business_id,
        "--coin",
        "DOGGO",
        "--address",
        "x",
    )
    assert code == 2
    assert "Unsupported blockchain" in err


def test_operator_lists_and_revokes_keys_and_sets_wallets_per_mode(env: dict[str, str]) -> None:
    env = {**env, "KEEL_COINPAY_WEBHOOK_ALLOW_PRIVATE": "true"}  # a receiver on loopback
    _, out, _ = run(
        env,
        "coinpay",
        "business",
        "create",
        "--name",
        "S",
        "--webhook-url",
        "http://127.0.0.1:9/hook",
        "--json",
    )
    created = json.loads(out)
    business_id = created["business_id"]
    hooks = created["webhooks"]
    assert sorted(hooks) == ["live", "test"]
    assert hooks["live"]["secret"] != hooks["test"]["secret"]

    live_btc = "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    wallet = ["coinpay", "wallet", "set", "--business", business_id, "--coin", "BTC"]
    assert run(env, *wallet, "--address", live_btc, "--mode", "live")[0] == 0
    code, _, err = run(env, *wallet, "--address", live_btc, "--mode", "staging")
    assert code == 2
    assert err.strip() == "error: --mode must be 'test', 'live' or 'both'"

    keys = []
    for mode in ("test", "live"):
        _, out, _ = run(
            env, "coinpay", "apikey", "create", "--business", business_id, "--mode", mode, "--json"
        )
        keys.append(json.loads(out)["key_id"])
    code, out, _ = run(env, "coinpay", "apikey", "list", "--business", business_id, "--json")
    assert code == 0
    listed = json.loads(out)
    assert [k["id"] for k in listed] == keys
    assert [k["livemode"] for k in listed] == [False, True]
    assert all(k["revoked_at"] is None for k in listed)

    code, out, _ = run(
        env, "coinpay", "apikey", "revoke", "--business", business_id, keys[1], "--json"
    )
    assert code == 0
    assert json.loads(out)["revoked_at"]
    code, _, err = run(env, "coinpay", "apikey", "revoke", "--business", business_id, "nope")
    assert code == 2
    assert err.strip() == "error: API key not found"

    async def live_world() -> tuple[list[str], list[str]]:
        settings = CoinpaySettings(master_key=env["KEEL_COINPAY_MASTER_KEY"], run_workers=False)
        product = create_app(settings, data_dir=env["KEEL_DATA_DIR"])
        async with product.lifespan():
            gw = product.app.state.gateway
            async with gw.sessions() as session:
                wallets = await businesses.list_wallets(session, business_id, "live")
                test_wallets = await businesses.list_wallets(session, business_id, "test")
                log = await audit.entries(session, business_id=business_id, mode="live", limit=10)
        return [w["wallet_address"] for w in wallets + test_wallets], [e["action"] for e in log]

    addresses, actions = asyncio.run(live_world())
    assert addresses == [live_btc]  # set for live only
    assert actions == ["api_key.revoked", "api_key.created", "wallet.set", "webhook.created"]
