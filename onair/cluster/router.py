"""The operator's view of the nodes, and draining one (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from onair.accounts.deps import CurrentUser
from onair.cluster.load import NodeLoad
from onair.cluster.node import ClusterNode, list_nodes, set_draining
from onair.context import Ctx
from onair.errors import ApiError, forbidden

router = APIRouter(prefix="/api/v1/cluster", tags=["cluster"])

NodeId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class NodeOut(BaseModel):
    node_id: str
    url: str
    studios: int = Field(description="Live shows whose studio runs on the node.")
    listeners: int
    cpu: float = Field(description="CPU time per second of the node's process (1.0: one core).")
    draining: bool = Field(description="Takes no new studios; its live ones move at a song's end.")
    score: float = Field(description="Load as placement weighs it; new studios go to the lowest.")

    @classmethod
    def of(cls, load: NodeLoad) -> NodeOut:
        return cls(
            node_id=load.node_id,
            url=load.url,
            studios=load.studios,
            listeners=load.listeners,
            cpu=load.cpu,
            draining=load.draining,
            score=round(load.score, 3),
        )


class NodesOut(BaseModel):
    this_node: str
    nodes: list[NodeOut]


def _cluster(ctx: Ctx, user: CurrentUser) -> ClusterNode:
    if not user.is_admin:
        raise forbidden("admins only")
    if ctx.cluster is None:
        raise ApiError(409, "single_node", "this node runs alone (no ONAIR_REDIS_URL)")
    return ctx.cluster


@router.get("/nodes", response_model=NodesOut, summary="The nodes and their load (admins)")
async def nodes(ctx: Ctx, user: CurrentUser) -> NodesOut:
    cluster = _cluster(ctx, user)
    found = await list_nodes(cluster.redis, cluster.keys)
    return NodesOut(this_node=cluster.node_id, nodes=[NodeOut.of(n) for n in found])


@router.post(
    "/nodes/{node_id}/drain",
    response_model=NodesOut,
    summary="Drain a node: no new studios; its live shows move to other nodes at a song's end",
)
async def drain(node_id: NodeId, ctx: Ctx, user: CurrentUser) -> NodesOut:
    cluster = _cluster(ctx, user)
    await _require_node(cluster, node_id)
    await set_draining(cluster.redis, cluster.keys, node_id, True)
    return await nodes(ctx, user)


@router.delete(
    "/nodes/{node_id}/drain",
    response_model=NodesOut,
    summary="Stop draining a node: it takes new studios again",
)
async def undrain(node_id: NodeId, ctx: Ctx, user: CurrentUser) -> NodesOut:
    cluster = _cluster(ctx, user)
    await set_draining(cluster.redis, cluster.keys, node_id, False)
    return await nodes(ctx, user)


async def _require_node(cluster: ClusterNode, node_id: str) -> None:
    if all(n.node_id != node_id for n in await list_nodes(cluster.redis, cluster.keys)):
        raise ApiError(404, "not_found", f"no node {node_id} is in the cluster")
