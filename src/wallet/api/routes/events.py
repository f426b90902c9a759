"""The feed of events (scope ``read``): what changed in the ledger, oldest first."""

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from wallet.domain.errors import ValidationFailed
from wallet.limits import (
    EVENT_PAGE_SIZE_DEFAULT,
    EVENT_PAGE_SIZE_MAX,
    EVENT_WAIT_S_MAX,
    POSITION_MAX,
)
from wallet.service.events import EVENT_TYPES, render_event

from ..deps import Service
from ..docs import COMMON, problems
from ..models import EventsRead
from ..responses import JSONBytes

router = APIRouter(tags=["events"])

_TYPES_LENGTH_MAX = sum(len(kind) + 1 for kind in EVENT_TYPES)


@router.get(
    "/events",
    response_model=EventsRead,
    summary="The events after a position, oldest first; optionally wait for the next one",
    description="Positions only grow, and a reader never misses one: once given an event at "
    "position P, no event at or below P appears later, whatever the number of service "
    "processes. Read on with `after=next_after`. With `wait`, an empty answer is held until an "
    "event arrives or `wait` seconds pass; the waiting request holds no database connection.",
    responses=problems("events_pruned", "overloaded", *COMMON),
)
async def list_events(
    service: Service,
    after: Annotated[int, Query(ge=0, le=POSITION_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=EVENT_PAGE_SIZE_MAX)] = EVENT_PAGE_SIZE_DEFAULT,
    types: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=_TYPES_LENGTH_MAX,
            description=f"Comma-separated, of: {', '.join(EVENT_TYPES)}",
            examples=["transaction.created,hold.expired"],
        ),
    ] = None,
    wait: Annotated[float, Query(ge=0, le=EVENT_WAIT_S_MAX)] = 0,
) -> Response:
    kinds = _event_types(types)
    wait = min(wait, service.settings.events_wait_s_max)
    page = await service.events.wait_page(service.read, after, limit, kinds, wait)
    items = b",".join(render_event(event) for event in page.items)
    return JSONBytes(b'{"items":[%s],"next_after":%d}' % (items, page.next_after))


def _event_types(types: str | None) -> tuple[str, ...]:
    if types is None:
        return ()
    kinds = tuple(dict.fromkeys(types.split(",")))
    unknown = [kind for kind in kinds if kind not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            f"unknown event type {unknown[0]!r}; the types are {', '.join(EVENT_TYPES)}",
            [{"loc": ["query", "types"], "msg": "unknown event type", "type": "value_error"}],
        )
    return kinds
