"""Compare keysteward's authorization engine with pycasbin, cedarpy, regopy and oso.

    /work/bench-venv/bin/pip install -r bench/requirements-authz.txt
    /work/bench-venv/bin/python bench/authz_compare.py [--no-write]

One RBAC model, generated with a fixed seed, is expressed in every engine.
It has 200 roles (some including another role), 2,000 service accounts holding 1-3
roles each, 6,000 role grants over 50 systems x 20 resources x 4 actions
(about 10% with a ``*`` resource), and 100 role deny rules. ``admin``
implies read, write and delete in keysteward, so the peers receive each
admin grant expanded into four grants. Role includes are native in
keysteward, casbin (``g`` links), Cedar (entity parents) and Rego
(``graph.reachable``); the oso policy receives each principal's flattened
role list.

A sample of requests is decided by every engine and checked to agree with
keysteward. Latency is timed per call with ``perf_counter_ns`` (the timer's
own median cost subtracted); throughput is a tight loop without timers.
keysteward is measured cold (a fresh index, every request new, so every
check is a full evaluation) and warm (the same requests again, served by the
decision memo). The floor is a function doing one Python set lookup of
``(principal, permission)``. Results go to the ``## Authorization`` section
of docs/benchmarks.md.
"""

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from keysteward.authz.engine import PolicyIndex, compile_policy  # noqa: E402
from keysteward.authz.policy import (  # noqa: E402
    AssignmentSpec,
    DenySpec,
    Policy,
    RoleSpec,
)

SEED = 20261204
SYSTEMS = [f"sys{i}" for i in range(50)]
RESOURCES = [f"res{i}" for i in range(20)]
ACTIONS = ["read", "write", "delete", "admin"]
IMPLIED = {"admin": ["read", "write", "delete", "admin"]}
ROLE_COUNT = 200
PRINCIPAL_COUNT = 2000
GRANT_COUNT = 6000
DENY_COUNT = 100
AGREEMENT_SAMPLE = 300
# A peer stops after this many checks or this many seconds, whichever first.
PEER_MAX_CHECKS = 2000
PEER_MAX_SECONDS = 8.0
KEYSTEWARD_CHECKS = 200_000
# Tight loops per keysteward and floor measurement; the fastest is reported.
REPEATS = 5


@dataclass
class Model:
    """The engine-neutral RBAC model every engine is built from."""

    grants: dict[str, list[tuple[str, str, str]]]
    includes: dict[str, list[str]]
    denies: dict[str, list[tuple[str, str, str]]]
    principal_roles: dict[str, list[str]]

    def closure(self, role: str) -> list[str]:
        seen = [role]
        for current in seen:
            for included in self.includes.get(current, []):
                if included not in seen:
                    seen.append(included)
        return seen

    def flat_roles(self, principal: str) -> list[str]:
        roles: list[str] = []
        for role in self.principal_roles[principal]:
            for held in self.closure(role):
                if held not in roles:
                    roles.append(held)
        return roles


def generate_model(rng: random.Random) -> Model:
    roles = [f"role{i}" for i in range(ROLE_COUNT)]
    grants: dict[str, list[tuple[str, str, str]]] = {role: [] for role in roles}
    for _ in range(GRANT_COUNT):
        role = rng.choice(roles)
        resource = "*" if rng.random() < 0.1 else rng.choice(RESOURCES)
        grants[role].append((rng.choice(SYSTEMS), resource, rng.choice(ACTIONS)))
    includes: dict[str, list[str]] = {role: [] for role in roles}
    for index, role in enumerate(roles[1:], start=1):
        if rng.random() < 0.2:
            includes[role].append(roles[rng.randrange(index)])
    denies: dict[str, list[tuple[str, str, str]]] = {role: [] for role in roles}
    for _ in range(DENY_COUNT):
        role = rng.choice(roles)
        resource = "*" if rng.random() < 0.1 else rng.choice(RESOURCES)
        denies[role].append((rng.choice(SYSTEMS), resource, rng.choice(ACTIONS)))
    principal_roles = {
        f"svc{i}": rng.sample(roles, rng.randint(1, 3)) for i in range(PRINCIPAL_COUNT)
    }
    return Model(grants, includes, denies, principal_roles)


def random_requests(
    model: Model, rng: random.Random, count: int
) -> list[tuple[str, str, str, str]]:
    """Draw (principal, system, resource, action); half aimed at held grants."""
    principals = list(model.principal_roles)
    found = []
    for _ in range(count):
        principal = rng.choice(principals)
        held = [g for r in model.flat_roles(principal) for g in model.grants[r]]
        if held and rng.random() < 0.5:
            system, resource, action = rng.choice(held)
            if resource == "*":
                resource = rng.choice(RESOURCES)
            if action == "admin":
                action = rng.choice(ACTIONS)
        else:
            system = rng.choice(SYSTEMS)
            resource = rng.choice(RESOURCES)
            action = rng.choice(ACTIONS)
        found.append((principal, system, resource, action))
    return found


# -- keysteward ----------------------------------------------------------------


def keysteward_policy(model: Model) -> Policy:
    roles = {
        role: RoleSpec(
            role,
            tuple(sorted({f"{s}:{r}:{a}" for s, r, a in grants})),
            tuple(model.includes[role]),
        )
        for role, grants in model.grants.items()
    }
    assignments = tuple(
        AssignmentSpec(f"service_account:{principal}", role)
        for principal, held in model.principal_roles.items()
        for role in held
    )
    denies = tuple(
        DenySpec(f"{s}:{r}:{a}", role=role)
        for role, rules in model.denies.items()
        for s, r, a in rules
    )
    return Policy(roles=roles, assignments=assignments, denies=denies)


def keysteward_checker(index: PolicyIndex) -> Callable[[tuple[str, ...]], bool]:
    def decide(request: tuple[str, ...]) -> bool:
        principal, system, resource, action = request
        return bool(
            index.check(f"service_account:{principal}", f"{system}:{resource}:{action}")
        )

    return decide


# -- peers ---------------------------------------------------------------------


def expanded(rules: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [(s, r, action) for s, r, a in rules for action in IMPLIED.get(a, [a])]


CASBIN_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act
"""


def build_casbin(model: Model) -> Callable[[tuple[str, ...]], bool]:
    import casbin

    casbin_model = casbin.model.Model()
    casbin_model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(casbin_model)
    rules = []
    for role, grants in model.grants.items():
        for s, r, a in expanded(grants):
            rules.append([role, f"{s}/{r}", a, "allow"])
    for role, denied in model.denies.items():
        for s, r, a in expanded(denied):
            rules.append([role, f"{s}/{r}", a, "deny"])
    enforcer.add_policies(rules)
    links = [
        [principal, role]
        for principal, held in model.principal_roles.items()
        for role in held
    ]
    links += [
        [role, included]
        for role, included_roles in model.includes.items()
        for included in included_roles
    ]
    enforcer.add_grouping_policies(links)

    def decide(request: tuple[str, ...]) -> bool:
        principal, system, resource, action = request
        return bool(enforcer.enforce(principal, f"{system}/{resource}", action))

    return decide


def _cedar_scope(system: str, resource: str) -> str:
    if resource == "*":
        return f'resource in System::"{system}"'
    return f'resource == Resource::"{system}/{resource}"'


def build_cedar(model: Model) -> Callable[[tuple[str, ...]], bool]:
    import cedarpy

    statements = []
    for role, grants in model.grants.items():
        for s, r, a in sorted(set(expanded(grants))):
            statements.append(
                f'permit(principal in Role::"{role}", action == Action::"{a}", '
                f"{_cedar_scope(s, r)});"
            )
    for role, denied in model.denies.items():
        for s, r, a in sorted(set(expanded(denied))):
            statements.append(
                f'forbid(principal in Role::"{role}", action == Action::"{a}", '
                f"{_cedar_scope(s, r)});"
            )
    policies = cedarpy.PolicySet.from_str("\n".join(statements))
    entities: list[dict[str, Any]] = []
    for principal, held in model.principal_roles.items():
        entities.append(
            {
                "uid": {"type": "User", "id": principal},
                "attrs": {},
                "parents": [{"type": "Role", "id": role} for role in held],
            }
        )
    for role, included in model.includes.items():
        # Cedar's "in" walks parents: holders of ``role`` are also in each
        # role it includes, so the included roles are the parents.
        entities.append(
            {
                "uid": {"type": "Role", "id": role},
                "attrs": {},
                "parents": [{"type": "Role", "id": other} for other in included],
            }
        )
    for system in SYSTEMS:
        entities.append(
            {"uid": {"type": "System", "id": system}, "attrs": {}, "parents": []}
        )
        for resource in RESOURCES:
            entities.append(
                {
                    "uid": {"type": "Resource", "id": f"{system}/{resource}"},
                    "attrs": {},
                    "parents": [{"type": "System", "id": system}],
                }
            )
    graph = cedarpy.Entities.from_json_str(json.dumps(entities))

    def decide(request: tuple[str, ...]) -> bool:
        principal, system, resource, action = request
        result = cedarpy.is_authorized(
            {
                "principal": f'User::"{principal}"',
                "action": f'Action::"{action}"',
                "resource": f'Resource::"{system}/{resource}"',
                "context": {},
            },
            policies,
            graph,
        )
        return result.decision == cedarpy.Decision.Allow

    return decide


REGO_MODULE = """
package authz

default allow := false

held_roles contains role if {
    some direct in data.principals[input.principal]
    some role in graph.reachable(data.includes, [direct])
}

granted if {
    some role in held_roles
    some resource in data.grants[role][input.system][input.action]
    resource in {input.resource, "*"}
}

denied if {
    some role in held_roles
    some resource in data.denies[role][input.system][input.action]
    resource in {input.resource, "*"}
}

allow if {
    granted
    not denied
}
"""


def _nested(rules: dict[str, list[tuple[str, str, str]]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for role, entries in rules.items():
        for s, r, a in expanded(entries):
            tree.setdefault(role, {}).setdefault(s, {}).setdefault(a, []).append(r)
    return tree


def build_rego(model: Model) -> Callable[[tuple[str, ...]], bool]:
    import regopy

    interpreter = regopy.Interpreter()
    interpreter.add_module("authz.rego", REGO_MODULE)
    interpreter.add_data(
        {
            "principals": model.principal_roles,
            "includes": model.includes,
            "grants": _nested(model.grants),
            "denies": _nested(model.denies),
        }
    )

    def decide(request: tuple[str, ...]) -> bool:
        principal, system, resource, action = request
        interpreter.set_input(
            {
                "principal": principal,
                "system": system,
                "resource": resource,
                "action": action,
            }
        )
        output = interpreter.query("x = data.authz.allow")
        return bool(output.binding("x").json() == "true")

    return decide


@dataclass
class OsoUser:
    name: str
    roles: list[str] = field(default_factory=list)


@dataclass
class OsoResource:
    system: str
    name: str


def build_oso(model: Model) -> Callable[[tuple[str, ...]], bool]:
    from oso import Oso

    lines = [
        "allow(user: OsoUser, action: String, resource: OsoResource) if",
        "    not denied(user, action, resource) and",
        "    role in user.roles and",
        "    grant(role, resource.system, pattern, action) and",
        '    (pattern = "*" or pattern = resource.name);',
        "denied(user: OsoUser, action: String, resource: OsoResource) if",
        "    role in user.roles and",
        "    deny(role, resource.system, pattern, action) and",
        '    (pattern = "*" or pattern = resource.name);',
    ]
    for role, grants in model.grants.items():
        for s, r, a in sorted(set(expanded(grants))):
            lines.append(f'grant("{role}", "{s}", "{r}", "{a}");')
    for role, denied in model.denies.items():
        for s, r, a in sorted(set(expanded(denied))):
            lines.append(f'deny("{role}", "{s}", "{r}", "{a}");')
    oso = Oso()
    oso.register_class(OsoUser)
    oso.register_class(OsoResource)
    oso.load_str("\n".join(lines))
    users = {p: OsoUser(p, model.flat_roles(p)) for p in model.principal_roles}

    def decide(request: tuple[str, ...]) -> bool:
        principal, system, resource, action = request
        return bool(
            oso.is_allowed(users[principal], action, OsoResource(system, resource))
        )

    return decide


# -- measurement ---------------------------------------------------------------


def timer_overhead() -> float:
    samples = []
    for _ in range(20_000):
        start = time.perf_counter_ns()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples)


@dataclass
class Result:
    name: str
    version: str
    checks: int = 0
    median_ns: float = 0.0
    p99_ns: float = 0.0
    per_second: float = 0.0
    build_seconds: float = 0.0
    disagreements: int | None = None
    error: str | None = None


def measure(
    decide: Callable[[Any], bool],
    requests: list[Any],
    overhead: float,
    *,
    max_seconds: float | None = None,
    loop_factory: Callable[[], Callable[[Any], bool]] | None = None,
    repeats: int = 1,
) -> tuple[int, float, float, float]:
    """Time each call, then the best of ``repeats`` tight loops.

    ``loop_factory`` makes the function each loop calls, so a cold engine
    can be timed on a fresh instance whose memo no earlier pass filled. The
    best loop is reported because other jobs on a shared machine only ever
    slow a loop down.
    """
    latencies = []
    deadline = time.perf_counter() + (max_seconds or float("inf"))
    for request in requests:
        start = time.perf_counter_ns()
        decide(request)
        latencies.append(max(time.perf_counter_ns() - start - overhead, 0))
        if time.perf_counter() > deadline:
            break
    done = requests[: len(latencies)]
    best = float("inf")
    for _ in range(repeats):
        looped = loop_factory() if loop_factory else decide
        start = time.perf_counter()
        for request in done:
            looped(request)
        best = min(best, time.perf_counter() - start)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(done), statistics.median(latencies), p99, len(done) / best


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(write: bool) -> None:
    rng = random.Random(SEED)
    model = generate_model(rng)
    overhead = timer_overhead()
    requests = random_requests(model, rng, KEYSTEWARD_CHECKS)
    agreement = requests[:AGREEMENT_SAMPLE]
    results: list[Result] = []

    policy = keysteward_policy(model)
    start = time.perf_counter()
    index = compile_policy(policy)
    build = time.perf_counter() - start
    reference = keysteward_checker(index)
    expected = [reference(request) for request in agreement]
    allowed_share = sum(expected) / len(expected)

    cold_index = compile_policy(policy)
    count, median, p99, rate = measure(
        keysteward_checker(cold_index),
        requests,
        overhead,
        loop_factory=lambda: keysteward_checker(compile_policy(policy)),
        repeats=REPEATS,
    )
    results.append(
        Result(
            "keysteward (cold: full evaluation)",
            _keysteward_version(),
            count,
            median,
            p99,
            rate,
            build,
            0,
        )
    )
    warm = keysteward_checker(cold_index)
    count, median, p99, rate = measure(warm, requests, overhead, repeats=REPEATS)
    results.append(
        Result(
            "keysteward (warm: decision memo)",
            _keysteward_version(),
            count,
            median,
            p99,
            rate,
            build,
            0,
        )
    )

    allowed_set = {
        (f"service_account:{p}", f"{s}:{r}:{a}")
        for p, s, r, a in requests
        if index.check(f"service_account:{p}", f"{s}:{r}:{a}")
    }

    def floor(request: tuple[str, ...]) -> bool:
        principal, system, resource, action = request
        return (f"service_account:{principal}", f"{system}:{resource}:{action}") in (
            allowed_set
        )

    floor_keys = [(f"service_account:{p}", f"{s}:{r}:{a}") for p, s, r, a in requests]

    def floor_prejoined(key: tuple[str, str]) -> bool:
        return key in allowed_set

    count, median, p99, rate = measure(floor, requests, overhead, repeats=REPEATS)
    results.append(
        Result("floor: set lookup (same call shape)", "-", count, median, p99, rate)
    )

    def warm_prejoined(key: tuple[str, str]) -> bool:
        return bool(cold_index.check(key[0], key[1]))

    count, median, p99, rate = measure(
        floor_prejoined, floor_keys, overhead, repeats=REPEATS
    )
    results.append(
        Result("floor: set lookup (prejoined key)", "-", count, median, p99, rate)
    )
    count, median, p99, rate = measure(
        warm_prejoined, floor_keys, overhead, repeats=REPEATS
    )
    results.append(
        Result(
            "keysteward warm (prejoined key)",
            _keysteward_version(),
            count,
            median,
            p99,
            rate,
            build,
            0,
        )
    )

    recompile = []
    for step in range(5):
        changed_roles = dict(policy.roles)
        role = changed_roles["role0"]
        changed_roles["role0"] = RoleSpec(
            role.name, (*role.permissions, f"sys{step}:extra{step}:read"), role.includes
        )
        changed = Policy(
            roles=changed_roles, assignments=policy.assignments, denies=policy.denies
        )
        start = time.perf_counter()
        compile_policy(changed)
        recompile.append(time.perf_counter() - start)

    peers = [
        ("pycasbin", "casbin", build_casbin),
        ("cedarpy", "cedarpy", build_cedar),
        ("regopy", "regopy", build_rego),
        ("oso", "oso", build_oso),
    ]
    for name, package, builder in peers:
        result = Result(name, _version(package))
        try:
            start = time.perf_counter()
            decide = builder(model)
            result.build_seconds = time.perf_counter() - start
            result.disagreements = sum(
                decide(request) != want
                for request, want in zip(agreement, expected, strict=True)
            )
            count, median, p99, rate = measure(
                decide,
                requests[:PEER_MAX_CHECKS],
                overhead,
                max_seconds=PEER_MAX_SECONDS,
            )
            result.checks, result.median_ns, result.p99_ns, result.per_second = (
                count,
                median,
                p99,
                rate,
            )
        except Exception as exc:  # noqa: BLE001 - report any peer failure as text
            result.error = f"{type(exc).__name__}: {exc}"
        results.append(result)
        print(f"{name}: done", file=sys.stderr)

    text = render(results, recompile, allowed_share, overhead)
    print(text)
    if write:
        write_section(text)


def _keysteward_version() -> str:
    from keysteward import __version__

    return __version__


def _machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    import os

    load = Path("/proc/loadavg").read_text().split()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory} RAM, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"1-minute load average {load} when the run ended (other jobs shared "
        "the machine)"
    )


def _us(value: float) -> str:
    return f"{value / 1000:.2f}"


def render(
    results: list[Result], recompile: list[float], allowed_share: float, overhead: float
) -> str:
    floor = next(r for r in results if r.name.startswith("floor: set lookup (same"))
    warm = next(r for r in results if r.name.startswith("keysteward (warm"))
    cold = next(r for r in results if r.name.startswith("keysteward (cold"))
    fastest_peer = max(
        (
            r
            for r in results
            if r.error is None
            and r.checks
            and r.version != "-"
            and not r.name.startswith("keysteward")
        ),
        key=lambda r: r.per_second,
        default=None,
    )
    lines = [
        "## Authorization",
        "",
        "Command: `/work/bench-venv/bin/pip install -r bench/requirements-authz.txt && "
        "/work/bench-venv/bin/python bench/authz_compare.py`",
        "",
        f"Machine: {_machine()}.",
        "",
        f"Model: {ROLE_COUNT} roles (about 20% include another role), "
        f"{PRINCIPAL_COUNT} service accounts with 1-3 roles each, {GRANT_COUNT} role "
        f"grants over {len(SYSTEMS)} systems x {len(RESOURCES)} resources x "
        f"{len(ACTIONS)} actions (about 10% with a `*` resource), {DENY_COUNT} role "
        f"deny rules; seed {SEED}. {allowed_share:.0%} of the agreement sample is "
        "allowed. Latency is per call with the timer's median cost "
        f"({overhead:.0f} ns) subtracted. Checks/s is a tight loop without "
        f"timers, the best of {REPEATS} for keysteward and the floor and one "
        "loop for each peer.",
        "",
        "| Engine | Version | Checks timed | Median (us) | p99 (us) | Checks/s | "
        "Build (s) | Disagreements with keysteward |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.name} | {r.version} | failed: `{r.error}` | | | | | |")
            continue
        agree = (
            "-"
            if r.disagreements is None
            else f"{r.disagreements} of {AGREEMENT_SAMPLE}"
        )
        lines.append(
            f"| {r.name} | {r.version} | {r.checks:,} | {_us(r.median_ns)} | "
            f"{_us(r.p99_ns)} | {r.per_second:,.0f} | "
            f"{r.build_seconds:.2f} | {agree} |"
        )
    lines += [
        "",
        f"Recompiling keysteward's index after adding one grant (a full rebuild): "
        f"median {statistics.median(recompile) * 1000:.0f} ms over "
        f"{len(recompile)} runs.",
        "",
        f"Warm keysteward vs the floor (same call shape), by checks/s: "
        f"{floor.per_second / warm.per_second:.2f}x the floor's time per check, "
        f"cold {floor.per_second / cold.per_second:.1f}x.",
    ]
    lines.append(
        f"By median latency: warm {warm.median_ns / floor.median_ns:.2f}x the "
        f"floor, cold {cold.median_ns / floor.median_ns:.1f}x."
    )
    if fastest_peer is not None:
        lines.append(
            f"Fastest peer ({fastest_peer.name}) vs keysteward, by checks/s: warm "
            f"is {warm.per_second / fastest_peer.per_second:,.0f}x faster, cold "
            f"{cold.per_second / fastest_peer.per_second:,.0f}x. By median "
            f"latency: warm {fastest_peer.median_ns / warm.median_ns:,.0f}x, cold "
            f"{fastest_peer.median_ns / cold.median_ns:,.0f}x."
        )
    lines += [
        "",
        "Notes: the peers expand `admin` into four grants because keysteward's "
        "`admin` implies read, write and delete. The oso policy gets each "
        "principal's flattened role list; the other engines resolve role "
        "includes themselves. cedarpy uses a pre-parsed `PolicySet` and "
        "`Entities`, regopy one interpreter with the data loaded once. Peers "
        f"stop after {PEER_MAX_CHECKS:,} checks or {PEER_MAX_SECONDS:.0f} s. "
        "Timings are ratios from one run. On a shared, loaded machine the "
        "tight-loop checks/s swing by several times between runs, so the "
        "median latencies are the steadier comparison.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    start = current.find("\n## Authorization\n")
    if start == -1:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + 1)
        tail = "" if end == -1 else current[end:]
        updated = current[: start + 1] + text + tail
    path.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="Print the table only.")
    args = parser.parse_args()
    run(write=not args.no_write)


if __name__ == "__main__":
    main()
