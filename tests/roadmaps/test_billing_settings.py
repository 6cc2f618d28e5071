"""Billing and usage configuration is checked at boot, and read into plans and grace periods."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError

from keel.roadmaps.billing.plans import GracePeriods, Plans
from keel.roadmaps.settings import RoadmapsSettings


def test_the_defaults_have_free_and_pro() -> None:
    plans = Plans.from_settings(RoadmapsSettings())
    assert plans.daily_limit("free", "generate") < plans.daily_limit("pro", "generate")
    assert plans.rank("free") < plans.rank("pro")
    assert plans.rank("legacy") < plans.rank("free")
    assert plans.for_variant("123") is None


def test_variants_map_to_plans_and_grace_periods_are_hours() -> None:
    settings = RoadmapsSettings(
        lemonsqueezy_variants={"123": "pro"}, billing_past_due_grace_hours=24, billing_grace_hours=6
    )
    assert Plans.from_settings(settings).for_variant("123") == "pro"
    assert GracePeriods.from_settings(settings) == GracePeriods(
        past_due=timedelta(hours=24), provider_down=timedelta(hours=6)
    )


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_ROADMAPS_LEMONSQUEEZY_VARIANTS", '{"555": "pro"}')
    monkeypatch.setenv(
        "KEEL_ROADMAPS_PLAN_DAILY_LIMITS", '{"free": {"generate": 1}, "pro": {"generate": 9}}'
    )
    monkeypatch.setenv("KEEL_ROADMAPS_LEMONSQUEEZY_SIGNING_SECRET", "s3cret-value")
    settings = RoadmapsSettings()
    assert Plans.from_settings(settings).daily_limit("pro", "generate") == 9
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"plan_daily_limits": {"free": {"generate": 1}}}, "'free' and 'pro'"),
        (
            {"plan_daily_limits": {"free": {"generate": 1}, "pro": {"upload": 1}}},
            "same actions",
        ),
        (
            {"plan_daily_limits": {"free": {"generate": -1}, "pro": {"generate": 1}}},
            "negative",
        ),
        ({"lemonsqueezy_variants": {"1": "gold"}}, "unknown plans"),
        ({"lemonsqueezy_signing_secret": SecretStr("  ")}, "at least 6"),
        ({"lemonsqueezy_api_url": "ftp://api.lemonsqueezy.com"}, "http"),
        ({"billing_grace_hours": -1}, "greater than or equal"),
    ],
)
def test_bad_billing_configuration_fails_at_boot(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RoadmapsSettings(**fields)  # type: ignore[arg-type]
