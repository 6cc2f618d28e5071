"""An in-memory :class:`~keel.coach.risk.goplus.TokenScanner` for tests and offline runs."""

from __future__ import annotations

from keel.coach.risk import addresses
from keel.coach.risk.errors import RiskError, TokenNotFound
from keel.coach.risk.report import RiskReport

__all__ = ["FakeScanner"]


class FakeScanner:
    """Answers with the reports it was given (``put``), raises the errors it was told to
    (``fail``), and counts calls per token in ``calls``."""

    def __init__(self, *reports: RiskReport) -> None:
        self._reports: dict[tuple[str, str], RiskReport | RiskError] = {}
        self.calls: dict[tuple[str, str], int] = {}
        for report in reports:
            self.put(report)

    def put(self, report: RiskReport) -> None:
        self._reports[(report.chain, report.address)] = report

    def fail(self, chain: str | None, address: str, error: RiskError) -> None:
        token = addresses.parse_token(address, chain)
        self._reports[(token.chain, token.address)] = error

    async def scan(self, chain: str | None, address: str) -> RiskReport:
        token = addresses.parse_token(address, chain)
        key = (token.chain, token.address)
        self.calls[key] = self.calls.get(key, 0) + 1
        answer = self._reports.get(key)
        if answer is None:
            raise TokenNotFound()
        if isinstance(answer, RiskError):
            raise answer
        return answer
