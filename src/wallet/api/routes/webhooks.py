"""Webhook endpoints (scope ``admin``): register, list, change, delete, their attempts, replay."""

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from wallet.service.webhooks import attempt_view, webhook_view

from ..deps import IdPath, Service
from ..docs import COMMON, problems
from ..jsonbody import ExactJSONRoute
from ..models import (
    DeliveryAttemptsRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookReplay,
    WebhooksRead,
    WebhookUpdate,
)

router = APIRouter(tags=["webhooks"], route_class=ExactJSONRoute)

_FOUND = ("webhook_not_found", *COMMON)


@router.post(
    "/admin/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a webhook endpoint; its signing secret is shown this once",
    responses=problems("payload_too_large", *COMMON),
)
def create_webhook(body: WebhookCreate, service: Service) -> dict[str, Any]:
    endpoint = service.webhooks.create(body.url, body.event_types, body.description)
    return webhook_view(endpoint, with_secret=True)


@router.get(
    "/admin/webhooks",
    response_model=WebhooksRead,
    summary="Every webhook endpoint, oldest first",
    responses=problems(*COMMON),
)
def list_webhooks(service: Service) -> dict[str, Any]:
    return {"items": [webhook_view(endpoint) for endpoint in service.webhooks.all()]}


@router.get(
    "/admin/webhooks/{webhook_id}",
    response_model=WebhookRead,
    summary="One webhook endpoint and how its deliveries go",
    responses=problems(*_FOUND),
)
def get_webhook(webhook_id: IdPath, service: Service) -> dict[str, Any]:
    return webhook_view(service.webhooks.get(webhook_id))


@router.patch(
    "/admin/webhooks/{webhook_id}",
    response_model=WebhookRead,
    summary="Change an endpoint's URL, event types or status",
    responses=problems("payload_too_large", *_FOUND),
)
def change_webhook(webhook_id: IdPath, body: WebhookUpdate, service: Service) -> dict[str, Any]:
    endpoint = service.webhooks.change(
        webhook_id, url=body.url, event_types=body.event_types, status=body.status
    )
    return webhook_view(endpoint)


@router.delete(
    "/admin/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an endpoint: nothing more is delivered to it",
    responses=problems(*_FOUND),
)
def delete_webhook(webhook_id: IdPath, service: Service) -> Response:
    service.webhooks.delete(webhook_id)
    return Response(status_code=204)


@router.get(
    "/admin/webhooks/{webhook_id}/attempts",
    response_model=DeliveryAttemptsRead,
    summary="An endpoint's latest delivery attempts, newest first",
    responses=problems(*_FOUND),
)
def list_attempts(webhook_id: IdPath, service: Service) -> dict[str, Any]:
    return {"items": [attempt_view(a) for a in service.webhooks.attempts(webhook_id)]}


@router.post(
    "/admin/webhooks/{webhook_id}/replay",
    response_model=WebhookRead,
    summary="Deliver again every event after a position",
    responses=problems("payload_too_large", *_FOUND),
)
def replay_webhook(webhook_id: IdPath, body: WebhookReplay, service: Service) -> dict[str, Any]:
    return webhook_view(service.webhooks.replay(webhook_id, body.after))
