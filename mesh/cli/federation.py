"""`mesh keys`, `mesh ca`, `mesh trust`, `mesh node`, `mesh publish`: organizations joining a hub.

The hub operator runs `mesh ca` and `mesh trust`; a partner runs `mesh keys init`, `mesh node`
and, for one-off publishing, `mesh publish`. Heavy modules load inside the commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mesh.cli.common import config_path

if TYPE_CHECKING:
    import grpc

    from mesh.config import ExpertManifest, FederationConfig, MeshConfig
    from mesh.experts.transport import ExpertTransport
    from mesh.federation.hub import FederationHub
    from mesh.federation.tls import TlsFiles


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="this organization's identity (signing key, TLS request)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    init = keys_sub.add_parser("init", help="create org.key/org.pub (ed25519) and tls.key/tls.csr")
    init.add_argument("--organization", required=True, help="your organization's name")
    init.add_argument("--dir", default=".", help="folder to write into (default: here)")
    init.add_argument("--san", action="append", default=[],
                      help="host name or IP the hub will dial to reach you (repeatable; "
                           "default: localhost, 127.0.0.1)")
    init.set_defaults(func=cmd_keys_init)

    ca = sub.add_parser("ca", help="the mesh's certificate authority (hub operator)")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    ca_init = ca_sub.add_parser("init", help="create the CA (ca.key, ca.crt)")
    ca_init.add_argument("--dir", required=True, help="folder for the CA (keep it private)")
    ca_init.add_argument("--name", required=True, help="the mesh's name, shown in certificates")
    ca_init.set_defaults(func=cmd_ca_init)
    issue = ca_sub.add_parser("issue", help="sign an organization's certificate request")
    issue.add_argument("--dir", required=True, help="the CA's folder")
    issue.add_argument("--csr", required=True, help="the tls.csr the organization sent")
    issue.add_argument("--role", required=True, choices=["hub", "node", "client"],
                       help="hub (the orchestrator), node (a partner) or client (an "
                       "application calling a hub's orchestrator port)")
    issue.add_argument("--organization", help="refuse the request unless it names this org")
    issue.add_argument("--days", type=int, default=365, help="validity (default 365)")
    issue.add_argument("--out", required=True, help="certificate file to write")
    issue.set_defaults(func=cmd_ca_issue)

    trust = sub.add_parser("trust", help="the hub's trust list of organizations")
    trust_sub = trust.add_subparsers(dest="trust_command", required=True, metavar="ACTION")
    for action, helptext in (("add", "trust an organization's signing key"),
                             ("revoke", "revoke an organization (its experts leave at once)"),
                             ("list", "show the trust list")):
        p = trust_sub.add_parser(action, help=helptext)
        if action != "list":
            p.add_argument("organization", help="organization name")
        if action == "add":
            p.add_argument("--public-key", required=True,
                           help="its org.pub file, or the base64 key itself")
        p.add_argument("-c", "--config", help="the hub's mesh config (finds the trust list)")
        p.add_argument("--trust-list", help="the trust list file (overrides -c)")
        p.set_defaults(func=cmd_trust, trust_action=action)

    node = sub.add_parser("node", help="run a partner node: serve experts to a hub over mTLS")
    node.add_argument("-c", "--config", required=True, help="the node's mesh config YAML")
    _add_partner_arguments(node)
    node.add_argument("--port", type=int, help="override orchestrator.port (the node's port)")
    node.add_argument("--local", action="store_true",
                      help="run the experts in this process instead of on Ray")
    add_health_port_argument(node)
    node.set_defaults(func=cmd_node)

    publish = sub.add_parser("publish", help="sign manifests and register them with a hub")
    publish.add_argument("manifests", nargs="+", help="manifest YAML files")
    _add_partner_arguments(publish)
    publish.set_defaults(func=cmd_publish)


def _add_partner_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hub", required=True, help="the hub's registry address (host:port)")
    p.add_argument("--organization", required=True, help="your organization's name")
    p.add_argument("--advertise", required=True, help="host:port the hub dials to reach you")
    p.add_argument("--signing-key", required=True, help="org.key from `mesh keys init`")
    _add_tls_arguments(p, required=True)


def _add_tls_arguments(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--tls-cert", required=required, help="certificate from `mesh ca issue`")
    p.add_argument("--tls-key", required=required, help="tls.key from `mesh keys init`")
    p.add_argument("--tls-ca", required=required, help="the mesh CA's ca.crt")


def add_hub_arguments(p: argparse.ArgumentParser) -> None:
    """`mesh orchestrator`'s federation flags (they override the config's federation block)."""
    p.add_argument("--federation-port", type=int,
                   help="serve the registry for partner nodes on this port (mutual TLS)")
    _add_tls_arguments(p, required=False)
    add_health_port_argument(p)


def add_health_port_argument(p: argparse.ArgumentParser) -> None:
    """--health-port: plaintext grpc.health.v1 only, for probes that have no certificate."""
    p.add_argument("--health-port", type=int,
                   help="also serve gRPC health checks (only) in plaintext on this port")


# ---- keys, ca, trust ----------------------------------------------------------------------------


def cmd_keys_init(args: argparse.Namespace) -> int:
    from mesh.federation.ca import make_request
    from mesh.federation.keys import generate_signing_key

    folder = Path(args.dir)
    private, public = generate_signing_key(folder)
    csr = make_request(folder, args.organization, args.san)
    print(f"signing key:   {private} (keep it secret)\n"
          f"public key:    {public}  -> send to the hub operator for its trust list\n"
          f"TLS request:   {csr}  -> send to the hub operator for `mesh ca issue`\n"
          f"TLS key:       {folder / 'tls.key'} (keep it secret)")
    return 0


def cmd_ca_init(args: argparse.Namespace) -> int:
    from mesh.federation.ca import init_ca

    cert = init_ca(Path(args.dir), args.name)
    print(f"CA certificate: {cert} (give it to every organization as ca.crt)")
    return 0


def cmd_ca_issue(args: argparse.Namespace) -> int:
    from mesh.federation.ca import identity_of, issue

    pem = issue(Path(args.dir), Path(args.csr).read_bytes(), args.role, args.organization,
                args.days)
    Path(args.out).write_bytes(pem)
    who = identity_of(pem)
    print(f"issued {args.out}: organization '{who.organization}', role '{who.role}'")
    return 0


def _trust_path(args: argparse.Namespace) -> Path:
    if args.trust_list:
        return Path(args.trust_list)
    from mesh.config import load_config

    config = load_config(config_path(args.config))
    return config.state_path() / config.federation.trust_list


def cmd_trust(args: argparse.Namespace) -> int:
    from mesh.federation.keys import fingerprint, public_key_from_text
    from mesh.federation.trust import load_trust, save_trust

    path = _trust_path(args)
    trust = load_trust(path)
    if args.trust_action == "add":
        given = Path(args.public_key)
        text = given.read_text().strip() if given.is_file() else args.public_key
        key = public_key_from_text(text)
        save_trust(path, trust.with_organization(args.organization, text))
        print(f"trusted '{args.organization}' (key {fingerprint(key)}) in {path}")
    elif args.trust_action == "revoke":
        save_trust(path, trust.with_revoked(args.organization))
        print(f"revoked '{args.organization}' in {path}; a running hub drops its experts now")
    else:
        for org, entry in sorted(trust.organizations.items()):
            printed = fingerprint(public_key_from_text(entry.public_key))
            print(f"{org:32} {printed}  {'REVOKED' if entry.revoked else 'trusted'}")
    return 0


# ---- the hub's side ------------------------------------------------------------------------------


def hub_federation(config: MeshConfig, args: argparse.Namespace) -> FederationConfig | None:
    """The federation settings `mesh orchestrator` runs with (flags over the config), or None
    when federation is off. TLS is mandatory once it is on."""
    from mesh.errors import ConfigError

    fed = config.federation
    update = {k: v for k, v in (("port", args.federation_port), ("tls_cert", args.tls_cert),
                                ("tls_key", args.tls_key), ("tls_ca", args.tls_ca))
              if v is not None}
    fed = fed.model_copy(update=update)
    if fed.port is None:
        return None
    if not (fed.tls_cert and fed.tls_key and fed.tls_ca):
        raise ConfigError("mesh orchestrator", [(
            "federation.tls_cert/tls_key/tls_ca", "are needed: partners are reached over "
            "mutual TLS only",
            "pass --tls-cert/--tls-key/--tls-ca from `mesh ca issue --role hub`")])
    return fed


def make_hub(fed: FederationConfig, config: MeshConfig, local: ExpertTransport,
             manifests: Sequence[ExpertManifest],
             on_experts: Callable[[list[ExpertManifest]], None]) -> FederationHub:
    """The hub's federation (registry, remote transport) around its local transport. TLS
    paths resolve against the config file's folder (or the working folder for flags)."""
    from mesh.federation.hub import FederationHub, tls_files

    state = config.state_path()
    tls = tls_files(fed, config.source_dir or Path.cwd())
    assert tls is not None  # hub_federation checked
    return FederationHub(fed, state, tls, local, manifests, on_experts)


def client_credentials(config: MeshConfig) -> grpc.ServerCredentials | None:
    """Mutual TLS for the orchestrator's clients when the config names its files, else None
    (plaintext, tokens only)."""
    from mesh.federation.hub import tls_files
    from mesh.federation.tls import server_credentials

    tls = tls_files(config.orchestrator, config.source_dir or Path.cwd())
    return server_credentials(tls) if tls is not None else None


def tls_channel(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    """A client's mutual-TLS credentials from --tls-cert/--tls-key/--tls-ca, or None."""
    given = [args.tls_cert, args.tls_key, args.tls_ca]
    if not any(given):
        return None
    if not all(given):
        from mesh.errors import ConfigError

        raise ConfigError("command line", [(
            "--tls-cert/--tls-key/--tls-ca", "only some were given",
            "pass all three (your certificate from `mesh ca issue --role client`, its key, "
            "and the mesh CA's certificate)")])
    from mesh.federation.tls import TlsFiles, channel_credentials

    return channel_credentials(TlsFiles(Path(args.tls_cert), Path(args.tls_key),
                                        Path(args.tls_ca)))


# ---- the partner's side -------------------------------------------------------------------------


def _tls(args: argparse.Namespace) -> TlsFiles:
    from mesh.federation.tls import TlsFiles

    return TlsFiles(Path(args.tls_cert), Path(args.tls_key), Path(args.tls_ca))


def cmd_publish(args: argparse.Namespace) -> int:
    import asyncio

    import grpc

    from mesh.config import load_manifest
    from mesh.federation.keys import load_signing_key
    from mesh.federation.publisher import check_organization, register, registry_channel
    from mesh.federation.signing import sign_manifest
    from mesh.federation.tls import describe_refusal
    from mesh.proto.v1 import registry_pb2_grpc

    manifests = [load_manifest(p) for p in args.manifests]
    check_organization(manifests, args.organization)
    key = load_signing_key(args.signing_key)
    tls = _tls(args)

    async def run() -> int:
        channel = registry_channel(args.hub, tls)
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        try:
            for m in manifests:
                response = await register(stub, m, sign_manifest(m, key), args.advertise)
                print(f"published {m.name} to {args.hub} (lease {response.lease_id}; the node "
                      f"at {args.advertise} keeps it alive with heartbeats)")
        except grpc.aio.AioRpcError as e:
            print(f"mesh: the hub refused: {describe_refusal(e, args.hub)}", file=sys.stderr)
            return 1
        finally:
            await channel.close()
        return 0

    return asyncio.run(run())


def cmd_node(args: argparse.Namespace) -> int:
    import asyncio

    from mesh.config import check_model_files, load_config, load_manifests
    from mesh.federation.keys import load_signing_key
    from mesh.federation.publisher import check_organization
    from mesh.observability.logs import setup_logging

    setup_logging()
    path = config_path(args.config)
    config = load_config(path)
    manifests = load_manifests(config)
    check_organization(manifests, args.organization)
    for m in manifests:
        check_model_files(m)
    key = load_signing_key(args.signing_key)
    tls = _tls(args)
    tls.read()  # a missing file fails here, before Ray starts
    transport = _node_transport(args, path, config, manifests)
    port = args.port if args.port is not None else config.orchestrator.port
    asyncio.run(_serve_node(args, config, manifests, transport, key, tls, port))
    return 0


def _node_transport(args: argparse.Namespace, path: Path, config: MeshConfig,
                    manifests: Sequence[ExpertManifest]) -> ExpertTransport:
    """Experts in this process (--local), or on this organization's own Ray cluster: started
    when absent (recorded, so `mesh down -c` stops it), experts deployed (no-op if unchanged)."""
    from mesh.experts.transport import LocalTransport

    if args.local:
        return LocalTransport(manifests)
    from mesh.runstate import RunState
    from mesh.serving import apps, cluster
    from mesh.serving.handle_transport import ServeTransport

    state = config.state_path()
    temp_dir = cluster.temp_dir_for(state)
    address = f"{args.advertise}"
    previous = RunState.load(state)
    started = bool(previous and previous.started_ray)
    if config.ray.address is None and not cluster.cluster_reachable(config.ray):
        print(f"starting this node's Ray cluster on {cluster.address(config.ray)}", flush=True)
        RunState(str(path), cluster.address(config.ray), True, str(temp_dir), 0, "").save(state)
        cluster.start_local_cluster(config.ray, state, temp_dir)
        started = True
    RunState(str(path), cluster.address(config.ray), started, str(temp_dir), os.getpid(),
             address).save(state)
    cluster.connect(config.ray, state)
    cluster.start_serve()
    apps.deploy_experts(manifests, progress=lambda line: print(line, flush=True))
    return ServeTransport([m.key for m in manifests])


async def _serve_node(args: argparse.Namespace, config: MeshConfig,
                      manifests: Sequence[ExpertManifest], transport: ExpertTransport,
                      key: object, tls: TlsFiles, port: int) -> None:
    import asyncio

    from mesh.federation.publisher import Publisher
    from mesh.federation.server import start_tls_server
    from mesh.grpcutil.server import stop_server
    from mesh.orchestrator.server import RunningOrchestrator, run_until_signalled
    from mesh.proto.v1 import expert_pb2_grpc
    from mesh.serving.node import SERVICE_NAME, ExpertNodeServicer

    servicer = ExpertNodeServicer(manifests, transport)
    server, bound, health = await start_tls_server(
        [lambda s: expert_pb2_grpc.add_ExpertNodeServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME], tls, allowed_roles=("hub",), host=config.orchestrator.host, port=port)
    print(f"node serving {len(manifests)} experts on {config.orchestrator.host}:{bound} "
          f"(mutual TLS, hub certificates only)", flush=True)
    health_server = None
    if args.health_port is not None:
        from mesh.federation.health_port import serve_health_port

        health_server, _ = await serve_health_port(health, config.orchestrator.host,
                                                   args.health_port)
    publisher = Publisher(args.hub, tls, key, manifests, args.advertise)  # type: ignore[arg-type]
    task = asyncio.get_running_loop().create_task(publisher.run())
    try:
        await run_until_signalled(RunningOrchestrator(server, bound, health,
                                                      config.orchestrator.grace_s))
    finally:
        task.cancel()
        await stop_server(server, health, 0)
        if health_server is not None:
            await health_server.stop(0)
        await publisher.close()
        await transport.close()
