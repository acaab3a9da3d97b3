"""`mesh tenants ...`: who may call the hub, with which experts and limits, and their tokens.

Works on the hub's state folder directly (``<state_dir>/tenants.sqlite3``), no running hub
needed; a running hub picks changes up within a fraction of a second.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from mesh.cli.common import config_path

if TYPE_CHECKING:
    from mesh.tenants import Limits, Tenant, TenantStore

_NONE = ("none", "off", "unlimited")


def register(sub: argparse._SubParsersAction) -> None:
    tenants = sub.add_parser("tenants", help="tenants of the hub: tokens, experts, quotas")
    actions = tenants.add_subparsers(dest="tenants_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="add a tenant and print its first token")
    create.add_argument("name", help="tenant name (lowercase letters, digits, . _ -)")
    _add_settings(create)
    create.set_defaults(func=_guard(cmd_create))

    listing = actions.add_parser("list", help="tenants with their experts, limits and tokens")
    listing.set_defaults(func=_guard(cmd_list))

    update = actions.add_parser("set", help="change a tenant (only the options given)")
    update.add_argument("name")
    _add_settings(update)
    update.set_defaults(func=_guard(cmd_set))

    delete = actions.add_parser("delete", help="remove a tenant and revoke its tokens")
    delete.add_argument("name")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=_guard(cmd_delete))

    token = actions.add_parser("token", help="issue an extra token for a tenant")
    token.add_argument("name")
    token.set_defaults(func=_guard(cmd_token))

    tokens = actions.add_parser("tokens", help="token ids and dates (never the secrets)")
    tokens.add_argument("name", nargs="?", help="only this tenant's tokens")
    tokens.set_defaults(func=_guard(cmd_tokens))

    rotate = actions.add_parser("rotate", help="new token; the tenant's others stop working")
    rotate.add_argument("name")
    rotate.add_argument("--grace", default="0", metavar="S",
                        help="seconds the old tokens keep working (default 0: at once)")
    rotate.set_defaults(func=_guard(cmd_rotate))

    revoke = actions.add_parser("revoke", help="revoke one token by its id")
    revoke.add_argument("token_id", help="the id shown by `mesh tenants tokens`")
    revoke.set_defaults(func=_guard(cmd_revoke))

    for parser in (create, listing, update, delete, token, tokens, rotate, revoke):
        parser.add_argument("-c", "--config",
                            help="the hub's mesh config (default: the embedded demo's)")


def _add_settings(p: argparse.ArgumentParser) -> None:
    # Values are parsed by this module, not argparse, so a bad one gets one line naming it.
    p.add_argument("--experts", metavar="A,B", help="allowed experts ('*': every expert)")
    p.add_argument("--rps", metavar="R", help="sustained requests per second ('none': no limit)")
    p.add_argument("--burst", metavar="B", help="requests at once after a quiet spell")
    p.add_argument("--concurrent", metavar="C", help="requests in flight at once")
    p.add_argument("--expert-limit", action="append", default=[],
                   metavar="EXPERT:rps=R,burst=B,concurrent=C",
                   help="limits for calls to one expert (repeatable; EXPERT:none removes)")
    p.add_argument("--cert-subject", action="append", default=[], metavar="CN",
                   help="client-certificate common name that means this tenant (repeatable; "
                        "replaces the list; 'none' clears it)")


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad input becomes one line on stderr and exit code 2 (not a traceback, not exit 1)."""
    def run(args: argparse.Namespace) -> int:
        from mesh.tenants import TenantError

        try:
            return command(args)
        except TenantError as e:
            print(f"mesh tenants: {e}", file=sys.stderr)
            return 2
    return run


def _store(args: argparse.Namespace) -> TenantStore:
    from mesh.config import load_config
    from mesh.tenants import TenantStore, store_path

    return TenantStore(store_path(load_config(config_path(args.config)).state_path()))


# ---- parsing of the options ----------------------------------------------------------------


def _number(field: str, text: str, integer: bool) -> float | int | None:
    from mesh.tenants import TenantError

    if text.strip().lower() in _NONE:
        return None
    try:
        value: float | int = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise TenantError(f"{field}: '{text}' is not {kind}; give e.g. {field} 5, "
                          "or none for no limit") from None
    if not math.isfinite(value) or value <= 0:
        raise TenantError(f"{field}: {text} must be above 0, or none for no limit")
    return value


def _limits(base: Limits, rps: str | None, burst: str | None, concurrent: str | None,
            prefix: str = "--") -> Limits:
    from mesh.tenants import Limits

    new_rps = base.rps if rps is None else _number(f"{prefix}rps", rps, integer=False)
    new_burst = base.burst if burst is None else _number(f"{prefix}burst", burst, integer=True)
    if rps is not None and new_rps is None and burst is None:
        new_burst = None  # removing the rate removes its bucket size
    new_conc = (base.concurrent if concurrent is None
                else _number(f"{prefix}concurrent", concurrent, integer=True))
    return Limits(rps=new_rps, burst=None if new_burst is None else int(new_burst),
                  concurrent=None if new_conc is None else int(new_conc))


def _expert_limit(text: str, current: dict[str, Limits]) -> None:
    """Apply one --expert-limit EXPERT:k=v,... to ``current`` (merging with what it had)."""
    from mesh.tenants import Limits, TenantError

    expert, sep, spec = text.partition(":")
    fix = "write --expert-limit EXPERT:rps=R,burst=B,concurrent=C (or EXPERT:none)"
    if not sep or not expert.strip() or not spec.strip():
        raise TenantError(f"--expert-limit: '{text}' is not EXPERT:limits; {fix}")
    expert = expert.strip()
    if spec.strip().lower() in _NONE:
        current.pop(expert, None)
        return
    given: dict[str, str] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in ("rps", "burst", "concurrent"):
            raise TenantError(f"--expert-limit: '{item}' in '{text}' is not rps=, burst= or "
                              f"concurrent=; {fix}")
        given[key] = value.strip()
    current[expert] = _limits(current.get(expert, Limits()), given.get("rps"),
                              given.get("burst"), given.get("concurrent"),
                              prefix=f"--expert-limit {expert} ")


def _apply(tenant: Tenant, args: argparse.Namespace) -> Tenant:
    """``tenant`` with the options that were given changed, the others kept."""
    changes: dict[str, object] = {}
    if args.experts is not None:
        names = [e.strip() for e in args.experts.split(",") if e.strip()]
        changes["experts"] = () if names in ([], ["*"]) else tuple(names)
    changes["limits"] = _limits(tenant.limits, args.rps, args.burst, args.concurrent)
    per_expert = dict(tenant.expert_limits)
    for text in args.expert_limit:
        _expert_limit(text, per_expert)
    changes["expert_limits"] = per_expert
    if args.cert_subject:
        subjects = [s.strip() for s in args.cert_subject if s.strip()]
        changes["cert_subjects"] = () if subjects in ([], ["none"]) else tuple(subjects)
    return replace(tenant, **changes)  # type: ignore[arg-type]


# ---- commands ------------------------------------------------------------------------------


def cmd_create(args: argparse.Namespace) -> int:
    from mesh.tenants import Tenant

    tenant = _apply(Tenant(name=args.name), args)
    with closing(_store(args)) as store:
        store.create(tenant)
        token = store.issue_token(tenant.name)
    print(f"created tenant '{tenant.name}': {_describe(tenant)}")
    _print_token(token)
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    with closing(_store(args)) as store:
        tenant = _apply(store.get(args.name), args)
        store.update(tenant)
    print(f"updated tenant '{tenant.name}': {_describe(tenant)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with closing(_store(args)) as store:
        tenants, tokens = store.tenants(), store.tokens()
    if not tenants:
        print("no tenants; add one with `mesh tenants create NAME`")
        return 0
    now = time.time()
    rows = [("NAME", "EXPERTS", "LIMITS", "PER EXPERT", "CERT SUBJECTS", "ACTIVE TOKENS")]
    for t in tenants:
        active = sum(1 for k in tokens if k.tenant == t.name and k.active(now))
        per_expert = "; ".join(f"{e}: {lim.describe()}" for e, lim in t.expert_limits.items())
        rows.append((t.name, ",".join(t.experts) or "*", t.limits.describe(), per_expert or "-",
                     ",".join(t.cert_subjects) or "-", str(active)))
    _table(rows)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from mesh.tenants import TenantError

    if not args.yes:
        if not sys.stdin.isatty():
            raise TenantError(f"--yes: deleting '{args.name}' revokes all its tokens; pass "
                              "--yes to confirm")
        answer = input(f"delete tenant '{args.name}' and revoke all its tokens? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    with closing(_store(args)) as store:
        store.delete(args.name)
    print(f"deleted tenant '{args.name}'; its tokens are revoked")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    with closing(_store(args)) as store:
        token = store.issue_token(args.name)
    print(f"new token for tenant '{args.name}'")
    _print_token(token)
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    with closing(_store(args)) as store:
        tokens = store.tokens(args.name)
    now = time.time()
    rows = [("ID", "TENANT", "CREATED", "REVOKED")]
    for k in tokens:
        if k.revoked_at is None:
            revoked = "-"
        elif k.revoked_at > now:
            revoked = f"at {_when(k.revoked_at)} (grace)"
        else:
            revoked = _when(k.revoked_at)
        rows.append((k.id, k.tenant, _when(k.created_at), revoked))
    _table(rows)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from mesh.tenants import TenantError

    try:
        grace = float(args.grace)
    except ValueError:
        grace = math.nan
    if not (math.isfinite(grace) and grace >= 0):
        raise TenantError(f"--grace: '{args.grace}' must be 0 or more seconds, e.g. --grace 300")
    with closing(_store(args)) as store:
        token = store.rotate(args.name, grace)
    when = "now" if not grace else f"in {grace:g} s"
    print(f"rotated tenant '{args.name}': its other tokens stop working {when}")
    _print_token(token)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with closing(_store(args)) as store:
        store.revoke(args.token_id)
    print(f"revoked token {args.token_id}; a running hub refuses it within a second")
    return 0


# ---- output --------------------------------------------------------------------------------


def _print_token(token: str) -> None:
    print(f"token: {token}\n"
          "This token is shown once and cannot be shown again (the hub keeps only its hash).\n"
          "Pass it with `mesh ask --token TOKEN ...`, or as gRPC metadata "
          "`authorization: Bearer TOKEN`.")


def _describe(t: Tenant) -> str:
    parts = [f"experts {','.join(t.experts) or '*'}", f"limits {t.limits.describe()}"]
    parts += [f"{e}: {lim.describe()}" for e, lim in t.expert_limits.items()]
    if t.cert_subjects:
        parts.append(f"certificates {','.join(t.cert_subjects)}")
    return "; ".join(parts)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
