"""A fake `gcloud`, `gh` and `python3 -m relaunch.deploy.wandb_automation`, installed on PATH by the deploy runner
tests under those names. It keeps resources in a JSON state file ($FAKE_CLOUD_STATE) and answers the command
shapes relaunch's deploy plan uses: describe (exit 1 with NOT_FOUND when absent), create, update, IAM policies.
It refuses what the real services would refuse out of order (a function whose topic or service account does not
exist yet, a member that is not an identity) and logs every call, marking the ones that changed state.

The tests run it a few hundred times, so it starts lean: `python -SE`, no json or re (marshal keeps the state).
"""

from __future__ import annotations

import fcntl
import marshal
import os
import sys

import fake_deploy_run

STATE = os.environ["FAKE_CLOUD_STATE"]
NUMBER = "123456789012"
_CHANGED = False


class Exit(Exception):
    def __init__(self, code: int, stderr: str = "", stdout: str = "") -> None:
        super().__init__(code)
        self.code, self.stderr, self.stdout = code, stderr, stdout


def not_found(what: str) -> Exit:
    return Exit(1, f"ERROR: NOT_FOUND: {what} not found\n")


def flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    named: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            named[key] = f"{named[key]}\n{value}" if key in named else value  # a repeated flag keeps every value
        else:
            positional.append(arg)
    return positional, named


def fields(record: dict, fmt: str) -> str:
    assert fmt.startswith("value(") and fmt.endswith(")"), f"fake: unexpected --format {fmt}"
    return "\t".join(str(_lookup(record, key)) for key in fmt[6:-1].split(",")) + "\n"


def _lookup(record: dict, key: str) -> object:
    value: object = record
    for part in key.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


def changed(state: dict) -> None:
    global _CHANGED
    _CHANGED = True


# --- gcloud ----------------------------------------------------------------------------------------------------


def gcloud(state: dict, argv: list[str]) -> str:
    pos, named = flags(argv)
    project = named.pop("project", None)
    if project != state["project"]:
        raise Exit(2, f"fake gcloud: --project={project}, expected {state['project']}\n")
    verb = pos[:3]
    if (
        "get-iam-policy" in pos
        or "add-iam-policy-binding" in pos
        or pos[:2] == ["functions", "add-invoker-policy-binding"]
    ):
        return iam(state, pos, named)
    handler = HANDLERS.get(tuple(pos[:2])) or HANDLERS.get(tuple(pos[:1]))
    if handler is None:
        raise Exit(2, f"fake gcloud: unsupported command {verb}\n")
    return handler(state, pos, named)


def services(state: dict, pos: list[str], named: dict) -> str:
    if pos[1] == "list":
        api = named["filter"].removeprefix("config.name=")
        return f"{api}\n" if api in state["apis"] else ""
    state["apis"].append(pos[2])
    changed(state)
    return ""


def projects(state: dict, pos: list[str], named: dict) -> str:
    return fields({"projectNumber": NUMBER}, named["format"])


def resource(kind: str, key_of=lambda pos, named: pos[-1]):
    """describe / create for simple named resources kept under state[kind]."""

    def handle(state: dict, pos: list[str], named: dict) -> str:
        key = key_of(pos, named)
        table = state.setdefault(kind, {})
        if "describe" in pos:
            if key not in table:
                raise not_found(f"{kind} {key}")
            return fields(table[key], named["format"]) if "format" in named else "name: x\n"
        if "create" in pos:
            if key in table:
                raise Exit(1, f"ERROR: ALREADY_EXISTS: {kind} {key}\n")
            table[key] = CREATORS.get(kind, lambda s, k, n: {"name": k})(state, key, named)
            changed(state)
            return ""
        raise Exit(2, f"fake gcloud: unsupported {kind} command {pos}\n")

    return handle


def _service_account(state: dict, key: str, named: dict) -> dict:
    return {"email": f"{key}@{state['project']}.iam.gserviceaccount.com"}


def _topic(state: dict, key: str, named: dict) -> dict:
    return {"name": f"projects/{state['project']}/topics/{key}"}


def _subscription(state: dict, key: str, named: dict) -> dict:
    if named["topic"] not in state.get("topics", {}):
        raise not_found(f"topic {named['topic']}")
    return {"topic": f"projects/{state['project']}/topics/{named['topic']}"}


def _bucket(state: dict, key: str, named: dict) -> dict:
    return {"name": key.removeprefix("gs://")}


def subscriptions(state: dict, pos: list[str], named: dict) -> str:
    name = pos[-1].rsplit("/", 1)[-1]
    table = state.setdefault("subscriptions", {})
    if pos[2] == "update":
        if name not in table:
            raise not_found(f"subscription {name}")
        sub = table[name]
        if "dead-letter-topic" in named:
            dl = named["dead-letter-topic"]
            if dl not in state["topics"]:
                raise not_found(f"topic {dl}")
            sub["deadLetterPolicy"] = {
                "deadLetterTopic": f"projects/{state['project']}/topics/{dl}",
                "maxDeliveryAttempts": int(named["max-delivery-attempts"]),
            }
        if "min-retry-delay" in named:
            sub["retryPolicy"] = {
                "minimumBackoff": named["min-retry-delay"],
                "maximumBackoff": named["max-retry-delay"],
            }
        changed(state)
        return ""
    return resource("subscriptions", lambda p, n: name)(state, pos, named)


def secrets(state: dict, pos: list[str], named: dict) -> str:
    secret = named["secret"]
    if secret not in state["secrets"]:
        raise Exit(1, f"ERROR: NOT_FOUND: Secret [projects/{NUMBER}/secrets/{secret}] not found or has no versions.\n")
    if pos[2] == "access":
        return state["secrets"][secret]
    return fields({"state": "ENABLED"}, named["format"])


def functions(state: dict, pos: list[str], named: dict) -> str:
    table = state.setdefault("functions", {})
    name = pos[2]
    if pos[1] == "describe":
        if name not in table:
            raise not_found(f"function {name}")
        return fields(table[name], named["format"])
    for account in (named["service-account"], named.get("trigger-service-account")):
        if account and account.split("@")[0] not in state.get("service_accounts", {}):
            raise Exit(1, f"ERROR: service account {account} does not exist\n")
    for ref in named.get("set-secrets", "").split(","):
        if ref and ref.split("=")[1].split(":")[0] not in state["secrets"]:
            raise Exit(1, f"ERROR: secret of {ref} not found\n")
    labels = dict(item.split("=") for item in named["update-labels"].split(","))
    function = {"labels": labels, "serviceConfig": {"uri": f"https://{name}-abc123-uc.a.run.app"}, "flags": named}
    if "trigger-topic" in named:
        function["eventTrigger"] = _trigger(state, name, named["trigger-topic"], table.get(name))
    table[name] = function
    changed(state)
    return ""


def _trigger(state: dict, name: str, topic: str, previous: dict | None) -> dict:
    if topic not in state.get("topics", {}):
        raise not_found(f"topic {topic}")
    if previous and "eventTrigger" in previous:
        return previous["eventTrigger"]  # a redeploy keeps the function's trigger and its subscription
    trigger = f"projects/{state['project']}/locations/us-central1/triggers/{name}-918273"
    sub = f"eventarc-us-central1-{name}-918273-sub-042"
    state.setdefault("subscriptions", {})[sub] = {
        "topic": f"projects/{state['project']}/topics/{topic}",
        "retryPolicy": {"minimumBackoff": "10s", "maximumBackoff": "600s"},
    }
    state.setdefault("eventarc", {})[trigger] = {
        "transport": {"pubsub": {"subscription": f"projects/{state['project']}/subscriptions/{sub}"}}
    }
    return {"trigger": trigger}


def eventarc(state: dict, pos: list[str], named: dict) -> str:
    trigger = state.get("eventarc", {}).get(pos[3])
    if trigger is None:
        raise not_found(f"trigger {pos[3]}")
    return fields(trigger, named["format"])


def scheduler(state: dict, pos: list[str], named: dict) -> str:
    table = state.setdefault("jobs", {})
    if pos[2] == "describe":
        if pos[3] not in table:
            raise not_found(f"job {pos[3]}")
        return fields(table[pos[3]], named["format"])
    name = pos[4]
    if (pos[2] == "create") == (name in table):
        raise Exit(1, f"ERROR: {'ALREADY_EXISTS' if name in table else 'NOT_FOUND'}: job {name}\n")
    prefix = f"projects/{state['project']}/topics/"
    if not named["topic"].startswith(prefix):  # as gcloud: a bare name needs a default project, which deploy never sets
        raise Exit(1, "ERROR: (gcloud) value for field [projectsId] in collection [pubsub.projects.topics] is required")
    named["topic"] = named["topic"].removeprefix(prefix)
    if named["topic"] not in state.get("topics", {}):
        raise not_found(f"topic {named['topic']}")
    attributes = named.get("attributes") or named.get("update-attributes") or ""
    table[name] = {
        "schedule": named["schedule"],
        "timeZone": named["time-zone"],
        "pubsubTarget": {
            "topicName": f"projects/{state['project']}/topics/{named['topic']}",
            "attributes": dict(a.split("=") for a in attributes.split(",") if a),
        },
    }
    changed(state)
    return ""


def logging(state: dict, pos: list[str], named: dict) -> str:
    table = state.setdefault("sinks", {})
    name = pos[3]
    if pos[2] == "describe":
        if name not in table:
            raise not_found(f"sink {name}")
        return fields(table[name], named["format"])
    table[name] = {
        "destination": pos[4],
        "filter": named["log-filter"],
        "writerIdentity": f"serviceAccount:service-{NUMBER}@gcp-sa-logging.iam.gserviceaccount.com",
    }
    changed(state)
    return ""


def iam(state: dict, pos: list[str], named: dict) -> str:
    role: str | None  # the binding's role; None when the command names none
    if pos[:2] == ["functions", "add-invoker-policy-binding"]:
        if pos[2] not in state.get("functions", {}):
            raise not_found(f"function {pos[2]}")
        key, role = f"run services {pos[2]}", "roles/run.invoker"
    else:
        at = pos.index("get-iam-policy") if "get-iam-policy" in pos else pos.index("add-iam-policy-binding")
        name = pos[at + 1] if len(pos) > at + 1 else named["service"]  # IAP's policy names its service by flag
        key, role = " ".join(pos[:at]) + " " + name, named.get("role")
    policy = state.setdefault("policies", {}).setdefault(key, [])
    if "get-iam-policy" in pos and pos[:2] == ["storage", "buckets"]:
        if "filter" in named:  # as gcloud: this command has no --filter
            raise Exit(2, "ERROR: (gcloud.storage.buckets.get-iam-policy) unrecognized arguments: --filter\n")
        kept = named["format"].split("bindings.filter('", 1)[1].split("')", 1)[0]
        flt = " AND ".join(f"-bindings.{t[1:]}" if t.startswith("-") else f"bindings.{t}" for t in kept.split(" AND "))
        return ",".join(_matching(policy, flt).split()) + "\n"  # the transform prints a list on one line
    if "get-iam-policy" in pos:
        return _matching(policy, named["filter"])
    member = named["member"]
    kind, _, email = member.partition(":")
    bad = kind not in ("serviceAccount", "user", "group", "domain") or ("@" in email) == (kind == "domain")
    if bad or any(c in email for c in ' "$()'):
        raise Exit(1, f"ERROR: INVALID_ARGUMENT: bad member {member!r}\n")
    condition = named.get("condition")
    title = None if condition in (None, "None") else condition.rpartition(",title=")[2]
    policy.append([role, member, title])
    changed(state)
    return ""


def _matching(policy: list, flt: str) -> str:
    """The roles get-iam-policy --filter prints: one exact binding, or a member's roles a "holds none" check names."""
    parts = flt.split('"')
    if flt.startswith('bindings.role="'):
        title = parts[3] if len(parts) == 7 else None
        role, member = parts[1], parts[-2]
        assert parts[-1] == "" and " AND bindings.members=" in parts[-3], flt
        return f"{role}\n" if [role, member, title] in policy else ""
    member = parts[-2]
    if "secretmanager" in flt:
        readers = ("roles/owner", "roles/editor")
        hits = [r for r, m, _ in policy if m == member and ("secretmanager" in r or r in readers)]
    else:
        assert "-bindings.condition:*" in flt, flt
        hits = [r for r, m, t in policy if m == member and r.startswith("roles/storage") and t is None]
    return "".join(f"{r}\n" for r in hits)


def firestore_indexes(state: dict, pos: list[str], named: dict) -> str:
    """composite list (the plan's --filter, evaluated) and create; kept as Firestore lists them, `__name__` appended."""
    table = state.setdefault("firestore_indexes", [])
    if pos[3] == "list":
        terms = dict(term.split("=", 1) for term in named["filter"].split(" AND "))
        return "".join(f"{i['group']}\n" for i in table if terms == _index_terms(i))
    configs = [dict(kv.split("=") for kv in value.split(",")) for value in named["field-config"].split("\n")]
    fields = [(c["field-path"], c["order"].upper()) for c in configs]
    index = {"group": named["collection-group"], "scope": named["query-scope"].upper(), "fields": fields}
    index["fields"].append(("__name__", fields[-1][1]))
    if any(_index_terms(i) == _index_terms(index) for i in table):
        raise Exit(1, "ERROR: (gcloud.firestore.indexes.composite.create) ALREADY_EXISTS: index already exists\n")
    table.append(index)
    changed(state)
    return ""


def _index_terms(index: dict) -> dict[str, str]:
    return {
        "name.segment(-3)": index["group"],
        "queryScope": index["scope"],
        "fields.fieldPath.list()": '"' + ",".join(name for name, _ in index["fields"]) + '"',
        "fields.order.list()": '"' + ",".join(order for _, order in index["fields"]) + '"',
    }


CREATORS = {"service_accounts": _service_account, "topics": _topic, "subscriptions": _subscription, "buckets": _bucket}
HANDLERS = {
    ("services",): services,
    ("projects",): projects,
    ("iam", "service-accounts"): resource("service_accounts", lambda p, n: p[-1].split("@")[0]),
    ("storage", "buckets"): resource("buckets", lambda p, n: p[-1].removeprefix("gs://")),
    ("firestore", "indexes"): firestore_indexes,
    ("firestore",): resource("firestore", lambda p, n: n["database"]),
    ("artifacts",): resource("repositories"),
    ("secrets",): secrets,
    ("pubsub", "topics"): resource("topics"),
    ("pubsub", "subscriptions"): subscriptions,
    ("functions",): functions,
    ("run", "services"): fake_deploy_run.run_services,
    ("beta",): fake_deploy_run.beta,
    ("eventarc",): eventarc,
    ("scheduler",): scheduler,
    ("logging",): logging,
}


# --- gh ----------------------------------------------------------------------------------------------------------


def gh(state: dict, argv: list[str]) -> str:
    assert argv[0] == "api", argv
    hooks = state.setdefault("hooks", {})
    repo = next(a for a in argv[1:] if a.startswith("repos/")).removeprefix("repos/").removesuffix("/hooks")
    if "--method=POST" not in argv:
        jq = next(a for a in argv if a.startswith("--jq="))
        url = jq.split('select(.config.url == "', 1)[1].split('")', 1)[0]
        return "".join(f"{h['url']}\n" for h in hooks.get(repo, []) if h["url"] == url)
    values = [argv[i + 1] for i, a in enumerate(argv) if a in ("-f", "-F")]
    config = dict(v.split("=", 1) for v in values)
    secret = sys.stdin.read() if config.get("config[secret]") == "@-" else None
    hook = {
        "url": config["config[url]"],
        "events": [v.split("=", 1)[1] for v in values if v.startswith("events[]=")],
        "secret": secret,
    }
    hooks.setdefault(repo, []).append(hook)
    changed(state)
    return "{}\n"


# --- python3 -m relaunch.deploy.wandb_automation ------------------------------------------------------------------


def wandb(state: dict, argv: list[str]) -> str:
    _, named = flags(argv[1:])
    state.setdefault("wandb_keys", []).append(os.environ.get("WANDB_API_KEY"))
    if argv[0] == "integration":
        url = state.get("wandb_integrations", {}).get(f"{named['entity']}/{named['name']}")
        if url is None:
            raise Exit(1, "NOT_FOUND: no webhook integration\n")
        return f"{url}\n"
    automations = state.setdefault("wandb_automations", {})
    key = f"{named['entity']}/{named['name']}"
    if argv[0] == "describe":
        if key not in automations:
            raise Exit(1, "NOT_FOUND: no automation\n")
        return f"{named['name']}\n"
    automations[key] = named
    changed(state)
    return f"created W&B automation {named['name']}\n"


def main() -> int:
    program, argv = os.path.basename(sys.argv[0]), sys.argv[1:]
    if program == "python3":
        if argv[:2] != ["-m", "relaunch.deploy.wandb_automation"]:
            os.execv(os.environ["FAKE_REAL_PYTHON"], [os.environ["FAKE_REAL_PYTHON"], *argv])
        argv = argv[2:]
    with open(STATE + ".lock", "w") as lock:  # bash runs a pipeline's commands at once, as real gcloud allows
        fcntl.flock(lock, fcntl.LOCK_EX)
        return run(program, argv)


def run(program: str, argv: list[str]) -> int:
    with open(STATE, "rb") as f:
        state = marshal.load(f)
    call: dict[str, object] = {"program": program, "argv": argv}
    state["calls"].append(call)
    try:
        fail = state.get("fail")
        if fail and fail["when"] in " ".join([program, *argv]):
            secret = sys.stdin.read() if fail.get("echo_stdin") else ""
            raise Exit(1, f"ERROR: {fail['error']} {secret}\n")
        out = {"gcloud": gcloud, "gh": gh, "python3": wandb}[program](state, argv)
        code, err = 0, ""
    except Exit as exc:
        out, code, err = exc.stdout, exc.code, exc.stderr
    call["changed"] = _CHANGED
    with open(STATE, "wb") as f:
        marshal.dump(state, f)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
