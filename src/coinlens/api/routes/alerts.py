"""`/v1/alerts`: the calling key's alert rules, their delivery log, and a test send."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from coinlens.alerts.rules import (
    AlertLog,
    AlertRuleCreate,
    AlertRulePublic,
    AlertRulesPage,
    AlertRuleUpdate,
    TestResult,
)
from coinlens.api.deps import CtxDep
from coinlens.api.errors import problem_responses
from coinlens.api.security import PrincipalDep
from coinlens.services import alerts

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
RuleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Alert rule id")]


@router.post(
    "", status_code=201, summary="Create an alert rule", responses=problem_responses(400, 422)
)
def create_alert(ctx: CtxDep, who: PrincipalDep, body: AlertRuleCreate) -> AlertRulePublic:
    """Validate channels (scheme, form, SSRF), symbol and thresholds; store it encrypted."""
    return alerts.create_rule(ctx, who.key_id, body)


@router.get("", summary="The calling key's alert rules")
def list_alerts(ctx: CtxDep, who: PrincipalDep) -> AlertRulesPage:
    """Rules newest first; channel URLs are redacted."""
    return alerts.list_rules(ctx, who.key_id)


@router.get("/{rule_id}", summary="One alert rule", responses=problem_responses(404))
def get_alert(ctx: CtxDep, who: PrincipalDep, rule_id: RuleId) -> AlertRulePublic:
    """One of the calling key's rules."""
    return alerts.get_rule(ctx, who.key_id, rule_id)


@router.patch("/{rule_id}", summary="Change an alert rule", responses=problem_responses(404, 422))
def update_alert(
    ctx: CtxDep, who: PrincipalDep, rule_id: RuleId, body: AlertRuleUpdate
) -> AlertRulePublic:
    """Change channels, cooldown, expiry, time zone, quiet hours, or pause/resume."""
    return alerts.update_rule(ctx, who.key_id, rule_id, body)


@router.delete(
    "/{rule_id}", status_code=204, summary="Delete an alert rule", responses=problem_responses(404)
)
def delete_alert(ctx: CtxDep, who: PrincipalDep, rule_id: RuleId) -> Response:
    """Delete a rule and its log."""
    alerts.delete_rule(ctx, who.key_id, rule_id)
    return Response(status_code=204)


@router.get("/{rule_id}/log", summary="Delivery log of a rule", responses=problem_responses(404))
def alert_log(ctx: CtxDep, who: PrincipalDep, rule_id: RuleId) -> AlertLog:
    """Events newest first; per channel: attempts, status, last error, idempotency key."""
    return alerts.rule_log(ctx, who.key_id, rule_id)


@router.post("/{rule_id}/test", summary="Send a sample alert now", responses=problem_responses(404))
async def send_test_alert(ctx: CtxDep, who: PrincipalDep, rule_id: RuleId) -> list[TestResult]:
    """Send a sample message through each channel of the rule and report each outcome."""
    return await run_in_threadpool(alerts.test_rule, ctx, who.key_id, rule_id)
