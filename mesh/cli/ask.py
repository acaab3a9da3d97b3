"""`mesh ask`, `route`, `experts`, `session`, `demo`: talking to a running mesh."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from typing import TypeVar

import grpc

from mesh.cli.common import mesh_command, orchestrator_address, rpc_error
from mesh.client import MeshClient
from mesh.proto.v1 import orchestrator_pb2

T = TypeVar("T")


def register(sub: argparse._SubParsersAction) -> None:
    ask = sub.add_parser("ask", help="ask the mesh a question")
    ask.add_argument("text", help="the question")
    ask.add_argument("--session", default="", help="continue this session")
    ask.add_argument("--expert", action="append", default=[], help="skip routing: ask this expert")
    ask.add_argument("--stream", action="store_true", help="print the answer as it streams")
    _address(ask)
    ask.set_defaults(func=cmd_ask)

    route = sub.add_parser("route", help="explain which experts would answer, with scores")
    route.add_argument("text")
    route.add_argument("--session", default="")
    _address(route)
    route.set_defaults(func=cmd_route)

    experts = sub.add_parser(
        "experts",
        help="list experts with organization, runtime, replicas, status and cost "
        "(replica-seconds, requests, replica-seconds per request)",
    )
    experts.add_argument("--by-organization", action="store_true",
                         help="also total replica-seconds per organization, CPU and GPU apart")
    _address(experts)
    experts.set_defaults(func=cmd_experts)

    session = sub.add_parser("session", help="show a session's turns")
    session.add_argument("session_id")
    _address(session)
    session.set_defaults(func=cmd_session)

    demo = sub.add_parser("demo", help="ask the running demo mesh a handful of real questions")
    _address(demo)
    demo.set_defaults(func=cmd_demo)


def _client(args: argparse.Namespace, address: str) -> MeshClient:
    from mesh.cli.federation import tls_channel

    return MeshClient(address, token=args.token, credentials=tls_channel(args))


def _address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="orchestrator host:port (default: the one `mesh up` started)")
    p.add_argument("--token", help="API token of your tenant (default: $MESH_TOKEN); "
                   "`mesh tenants create` issues one")
    p.add_argument("--tls-cert", help="client certificate for an orchestrator serving mutual "
                   "TLS (`mesh ca issue --role client`)")
    p.add_argument("--tls-key", help="its private key")
    p.add_argument("--tls-ca", help="the mesh CA's certificate")


def _print_route(route: orchestrator_pb2.RouteDecision, top: int = 5) -> None:
    print(f"route: {route.reason}")
    for s in route.scores[:top]:
        mark = "*" if s.expert in route.chosen else " "
        print(f"  {mark} {s.expert:<24} {s.score:.3f}   nearest: {s.nearest_example[:60]!r}")


def _print_answer(r: orchestrator_pb2.AskResponse) -> None:
    experts = ", ".join(f"{p.expert} ({p.organization})" for p in r.parts) or "none"
    print(f"answered by: {experts}")
    print(textwrap.indent(r.answer, "  "))
    _print_route(r.route, top=3)
    t = r.timings
    print(f"timings: route {t.route_ms:.1f} ms, experts {t.experts_ms:.1f} ms, "
          f"total {t.total_ms:.1f} ms   session: {r.session_id}")


def cmd_ask(args: argparse.Namespace) -> int:
    address = orchestrator_address(args.address)
    try:
        with _client(args, address) as client:
            if args.stream:
                for chunk in client.ask_stream(args.text, args.session, args.expert):
                    if chunk.HasField("final"):
                        print()
                        _print_route(chunk.final.route, top=3)
                        print(f"session: {chunk.final.session_id}")
                    else:
                        print(chunk.text_delta, end="", flush=True)
            else:
                _print_answer(client.ask(args.text, args.session, args.expert))
    except grpc.RpcError as e:
        return rpc_error(e, address)
    return 0


def _call(args: argparse.Namespace, call: Callable[[MeshClient], T]) -> T | int:
    """Run one call against the orchestrator; a gRPC error becomes a line and exit code 1."""
    address = orchestrator_address(args.address)
    try:
        with _client(args, address) as client:
            return call(client)
    except grpc.RpcError as e:
        return rpc_error(e, address)


def cmd_route(args: argparse.Namespace) -> int:
    r = _call(args, lambda c: c.route(args.text, args.session))
    if isinstance(r, int):
        return r
    _print_route(r.route, top=len(r.route.scores))
    decision = "out of scope" if r.route.out_of_scope else ", ".join(r.route.chosen)
    print(f"decision: {decision}   threshold {r.route.threshold:.3f}   "
          f"routing took {r.route_ms:.2f} ms")
    if r.threshold_explanation:
        print(f"thresholds: {r.threshold_explanation}")
    return 0


def cmd_experts(args: argparse.Namespace) -> int:
    listed = _call(args, lambda c: c.experts())
    if isinstance(listed, int):
        return listed
    # Cost is replica-seconds (replicas held x seconds) since the orchestrator started; CPU and
    # GPU replica-seconds are kept apart (DEVICE), per request is that divided by REQUESTS.
    # REPLICAS and STATUS stay the last two columns: scripts read them from the end.
    # VERSION and SHARE: every deployed version is a row; SHARE is its part of the expert's
    # sessions now (the traffic split), with its role (stable, canary, idle).
    print(f"{'EXPERT':<22} {'VERSION':<10} {'SHARE':>12} {'ORGANIZATION':<24} {'RUNTIME':<7} "
          f"{'DEVICE':<6} {'REPLICA-S':>10} {'REQUESTS':>8} {'REPLICA-S/REQ':>13} "
          f"{'REPLICAS':>8}  STATUS")
    for row in listed.experts:
        per = f"{row.cost_per_request:.3f}" if row.requests else "-"
        share = f"{row.share:.0%} {row.role}"
        print(f"{row.card.name:<22} {row.card.version:<10} {share:>12} "
              f"{row.card.organization:<24} {row.card.runtime:<7} "
              f"{row.device or 'cpu':<6} {row.replica_seconds:>10.1f} {row.requests:>8} "
              f"{per:>13} {row.replicas:>8}  {row.status}")
    if args.by_organization:
        totals: dict[tuple[str, str], list[float]] = {}
        for row in listed.experts:
            t = totals.setdefault((row.card.organization, row.device or "cpu"), [0.0, 0.0])
            t[0] += row.replica_seconds
            t[1] += row.requests
        print(f"\n{'ORGANIZATION':<26} {'DEVICE':<6} {'REPLICA-S':>10} {'REQUESTS':>8}")
        for (org, device), (seconds, requests) in sorted(totals.items()):
            print(f"{org:<26} {device:<6} {seconds:>10.1f} {int(requests):>8}")
    return 0


def cmd_session(args: argparse.Namespace) -> int:
    s = _call(args, lambda c: c.session(args.session_id))
    if isinstance(s, int):
        return s
    for i, t in enumerate(s.turns, 1):
        print(f"{i}. Q: {t.question}\n   A ({', '.join(t.experts) or 'no expert'}): "
              f"{t.answer[:300]}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mesh.demo.questions import DEMO_QUESTIONS

    address = orchestrator_address(args.address)
    session = ""
    try:
        with _client(args, address) as client:
            for i, (question, _expected) in enumerate(DEMO_QUESTIONS, 1):
                print(f"\n=== {i}. {question}")
                r = client.ask(question, session_id=session)
                session = r.session_id
                _print_answer(r)
    except grpc.RpcError as e:
        return rpc_error(e, address)
    cmd = mesh_command()
    print(f"\nAll {len(DEMO_QUESTIONS)} questions in one session: {cmd} session {session}")
    print(f'Ask your own: {cmd} ask "..." [--session {session}]     Stop the mesh: {cmd} down')
    return 0
