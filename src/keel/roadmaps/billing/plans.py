"""Plans and the periods a paid plan outlives its end, read once from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

from keel.roadmaps.settings import RoadmapsSettings

FREE = "free"
PRO = "pro"


class UnknownAction(ValueError):
    """An action no plan limits: a bug in the caller, never the user's input."""


@dataclass(frozen=True)
class Plans:
    """Daily limits per plan and action, and which LemonSqueezy variant buys which plan.

    Plans are ranked by their order in ``daily_limits`` (cheapest first), so when a user holds
    two entitlements the better one wins.
    """

    daily_limits: Mapping[str, Mapping[str, int]]
    variants: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: RoadmapsSettings) -> Plans:
        limits = {plan: MappingProxyType(dict(a)) for plan, a in settings.plan_daily_limits.items()}
        return cls(MappingProxyType(limits), MappingProxyType(dict(settings.lemonsqueezy_variants)))

    def rank(self, plan: str) -> int:
        """Higher is better; an unknown plan ranks below free."""
        names = list(self.daily_limits)
        return names.index(plan) if plan in names else -1

    def for_variant(self, variant_id: str) -> str | None:
        """The plan a variant buys, or None for a variant the settings do not map."""
        return self.variants.get(variant_id)

    def daily_limit(self, plan: str, action: str) -> int:
        """Uses of ``action`` per UTC day on ``plan``; an unknown plan gets free's limits."""
        per_action = self.daily_limits.get(plan, self.daily_limits[FREE])
        if action not in per_action:
            raise UnknownAction(f"no daily limit for action {action!r}")
        return per_action[action]


@dataclass(frozen=True)
class GracePeriods:
    """past_due: how long a subscription whose payment failed keeps its plan (LemonSqueezy
    retries the card meanwhile). provider_down: how long a paid plan outlives its confirmed end
    while LemonSqueezy cannot be asked whether it renewed."""

    past_due: timedelta
    provider_down: timedelta

    @classmethod
    def from_settings(cls, settings: RoadmapsSettings) -> GracePeriods:
        return cls(
            past_due=timedelta(hours=settings.billing_past_due_grace_hours),
            provider_down=timedelta(hours=settings.billing_grace_hours),
        )
