from __future__ import annotations

from banhammer.energy.v1 import alert_pb2, alert_pb2_grpc

from . import convert
from .auth import Auth


class AlertServicer(alert_pb2_grpc.AlertServiceServicer):
    def __init__(self, alerts, auth: Auth) -> None:
        self.alerts, self.auth = alerts, auth

    async def CreateAlertRule(self, request, context):
        await self.auth.admin(context)
        created = await self.alerts.create_rule(convert.rule_in(request.rule))
        return alert_pb2.CreateAlertRuleResponse(rule=convert.rule(created))

    async def ListAlertRules(self, request, context):
        await self.auth.user(context)
        page = await self.alerts.list_rules(request.building_id, request.page_size, request.page_token)
        return alert_pb2.ListAlertRulesResponse(rules=[convert.rule(r) for r in page.items],
                                                next_page_token=page.next_token)

    async def DeleteAlertRule(self, request, context):
        await self.auth.admin(context)
        return alert_pb2.DeleteAlertRuleResponse(cleared_alert_count=await self.alerts.delete_rule(request.rule_id))

    async def ListAlerts(self, request, context):
        await self.auth.user(context)
        page = await self.alerts.list_alerts(request.building_id, list(request.states),
                                             *convert.time_range(request, "time_range"), request.page_size,
                                             request.page_token)
        return alert_pb2.ListAlertsResponse(alerts=[convert.alert(a) for a in page.items],
                                            next_page_token=page.next_token)

    async def AcknowledgeAlert(self, request, context):
        caller = await self.auth.user(context)
        by = caller.username or request.acknowledged_by  # the authenticated user when there is one
        alert = await self.alerts.acknowledge(request.alert_id, by, request.note)
        return alert_pb2.AcknowledgeAlertResponse(alert=convert.alert(alert))
