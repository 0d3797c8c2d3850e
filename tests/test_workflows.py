"""The GitHub workflows keep production secrets from unreviewed code, enforce the policy pack,
never run two updates of one stack at once, and renew certificates in time.

Structural checks on the YAML (PyYAML, as GitHub parses it), against the environment
contract that README "Continuous delivery" documents. GitHub enforces an environment's
reviewers and branch rules, not the workflow file (a pull request can edit the file), so the
contract below is also checked against the README that tells operators how to create them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from openbao_platform import renewal
from openbao_platform.cron import longest_interval
from openbao_platform.settings import parse_settings
from tests.support.program import ROOT, stack_config

WORKFLOWS = ROOT / ".github" / "workflows"
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
PULUMI_ACTION = "pulumi/actions@"
#: The engine version that supports replacement_trigger without firing on dependency changes.
MIN_PULUMI = (3, 226, 0)
#: Scheduled runs that may be missed (delayed, dropped, failed) in a row while every
#: certificate is still re-issued before its early-renewal window opens.
MISSED_RUNS_TOLERATED = 3
ON_MAIN = "github.ref == 'refs/heads/main'"


@dataclass(frozen=True)
class Environment:
    """A GitHub environment as README "Continuous delivery" says to create it."""

    stack: str
    reviewers: bool
    main_only: bool
    writes: bool  # holds credentials that can change the stack / cluster


ENVIRONMENTS = {
    "dev-preview": Environment("dev", reviewers=False, main_only=False, writes=False),
    "prod-preview": Environment("prod", reviewers=True, main_only=False, writes=False),
    "dev": Environment("dev", reviewers=False, main_only=True, writes=True),
    "prod": Environment("prod", reviewers=True, main_only=True, writes=True),
    "prod-renewal": Environment("prod", reviewers=False, main_only=True, writes=True),
}


# --- reading the workflows --------------------------------------------------------------

def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path.name
    return doc


def triggers(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``on:`` map (YAML 1.1 reads the bare key ``on`` as True)."""
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {k: None for k in on}
    assert isinstance(on, dict)
    return on


def workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load(p) for p in sorted(WORKFLOWS.glob("*.y*ml"))}


def jobs() -> Iterator[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    for name, doc in workflows().items():
        for job_id, job in doc["jobs"].items():
            yield name, doc, job_id, job


def environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def pulumi_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """pulumi/actions steps that run a command (not the install-only use)."""
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(PULUMI_ACTION)
            and (s.get("with") or {}).get("command")]


def commands(job: dict[str, Any]) -> set[str]:
    return {s["with"]["command"] for s in pulumi_steps(job)}


def updates(job: dict[str, Any]) -> bool:
    return bool(commands(job) & {"up", "update", "destroy", "refresh"})


def stack_of(job: dict[str, Any]) -> str:
    stacks = {s["with"]["stack-name"] for s in pulumi_steps(job)}
    assert len(stacks) == 1, f"one stack per job, got {stacks}"
    return stacks.pop()


def secrets_used(node: Any) -> set[str]:
    """Names of the secrets the ``${{ }}`` expressions in ``node`` read; ``<dynamic>`` for
    ``secrets[...]``, ``toJSON(secrets)`` and the like, which hide the name."""
    names: set[str] = set()
    for expr in re.findall(r"\$\{\{(.*?)\}\}", json.dumps(node)):
        names.update(re.findall(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)", expr))
        if re.search(r"\bsecrets\b(?!\.[A-Za-z_])", expr):
            names.add("<dynamic>")
    return names


def pulumi_jobs() -> list[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    return [j for j in jobs() if pulumi_steps(j[3])]


# --- schedules: openbao_platform.cron (cronsim) reads them --------------------------------


def longest_gap(exprs: list[str]) -> dt.timedelta:
    """The longest time between two consecutive scheduled runs, several cron entries merged as GitHub does."""
    return dt.timedelta(seconds=longest_interval(*exprs))


# --- the properties ---------------------------------------------------------------------

def test_workflows_parse_and_grant_read_only_by_default() -> None:
    found = workflows()
    assert {"preview.yml", "delivery.yml", "renewal.yml"} <= set(found)
    for name, doc in found.items():
        assert triggers(doc), name
        assert doc.get("permissions") == {"contents": "read"}, f"{name}: workflow permissions must be contents: read"
        assert not secrets_used(doc.get("env")), f"{name}: no secrets in the workflow-level env"


def test_secrets_are_environment_secrets_only() -> None:
    # A job without an environment would read repository (or organization) secrets, which
    # every branch's workflow can reach; every secret lives in an environment instead.
    for name, _, job_id, job in jobs():
        used = secrets_used(job) - {"GITHUB_TOKEN"}
        if used:
            assert environment(job), f"{name}:{job_id} uses secrets {used} without an environment"
        assert "<dynamic>" not in used, f"{name}:{job_id}: secrets[...] hides which secret a job reads"


def test_every_environment_is_documented_and_matches_its_stack() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Continuous delivery", 1)[1].split("\n## ", 1)[0]
    used = {environment(job) for *_, job in jobs()} - {None}
    assert used <= set(ENVIRONMENTS), f"undocumented environments {used - set(ENVIRONMENTS)}"
    for env_name, env in ENVIRONMENTS.items():
        row = next((line for line in section.splitlines() if line.startswith(f"| `{env_name}` |")), None)
        assert row, f"README 'Continuous delivery' has no row for environment {env_name}"
        assert ("required reviewers" in row) == env.reviewers, f"{env_name}: README reviewers must match"
        assert ("main only" in row) == env.main_only, f"{env_name}: README branch rule must match"
        assert ("read-only" in row) == (not env.writes), f"{env_name}: README credentials must match"
    for name, _, job_id, job in pulumi_jobs():
        env = ENVIRONMENTS[environment(job)]
        assert env.stack == stack_of(job), f"{name}:{job_id}: environment {environment(job)} is for {env.stack}"


def test_pull_requests_never_reach_prod_secrets_without_a_reviewer() -> None:
    for name, doc, job_id, job in jobs():
        on = triggers(doc)
        assert "pull_request_target" not in on, f"{name}: pull_request_target runs PR code with secrets"
        assert "workflow_run" not in on, f"{name}: workflow_run inherits secrets from PR-triggered runs"
        if "pull_request" not in on:
            continue
        assert not updates(job), f"{name}:{job_id}: a pull request must not update a stack"
        env_name = environment(job)
        if env_name is None:
            continue
        env = ENVIRONMENTS[env_name]
        assert not env.writes, f"{name}:{job_id}: pull requests get read-only credentials"
        assert not env.main_only, f"{name}:{job_id}: {env_name} refuses pull requests' refs"
        if env.stack == "prod" or "prod" in env_name:
            assert env.reviewers, f"{name}:{job_id}: prod secrets on a pull request need required reviewers"
        assert "github.event.pull_request.head.repo.full_name == github.repository" in str(job.get("if")), \
            f"{name}:{job_id}: skip forks (they get no secrets and would only fail)"


def test_updates_run_only_from_main_with_write_environments() -> None:
    for name, doc, job_id, job in pulumi_jobs():
        if not updates(job):
            continue
        env = ENVIRONMENTS[environment(job)]
        assert env.writes and env.main_only, f"{name}:{job_id}: updates need a main-only write environment"
        assert ON_MAIN in str(job.get("if")), f"{name}:{job_id}: must also check {ON_MAIN}"
        assert set(triggers(doc)) <= {"push", "schedule", "workflow_dispatch"}, name
        if "push" in triggers(doc):
            assert triggers(doc)["push"] == {"branches": ["main"]}, f"{name}: deliver main only"


def test_unreviewed_prod_updates_only_reapply_the_deployed_commit() -> None:
    # prod-renewal has no reviewers (it runs unattended); it must not deploy anything the prod
    # approval has not seen: it checks out the commit of prod's last successful update.
    for name, doc, job_id, job in pulumi_jobs():
        env = ENVIRONMENTS[environment(job)]
        if not (updates(job) and env.stack == "prod" and not env.reviewers):
            continue
        assert set(triggers(doc)) <= {"schedule", "workflow_dispatch"}, f"{name}:{job_id}"
        steps = job["steps"]
        up = next(i for i, s in enumerate(steps) if s in pulumi_steps(job))
        pinned = [i for i, s in enumerate(steps[:up]) if "git checkout --detach" in str(s.get("run"))
                  and "git merge-base --is-ancestor" in str(s.get("run"))
                  and "pulumi stack history" in str(s.get("run"))]
        assert pinned, f"{name}:{job_id}: check out the deployed commit (on main) before `pulumi up`"
        later = [s for s in steps[pinned[-1] + 1:] if str(s.get("uses", "")).startswith("actions/checkout")]
        assert not later, f"{name}:{job_id}: a later checkout would undo the pin"


def test_prod_is_delivered_after_dev_and_behind_approval() -> None:
    doc = workflows()["delivery.yml"]
    by_stack = {stack_of(j): (jid, j) for jid, j in doc["jobs"].items() if pulumi_steps(j)}
    assert set(by_stack) == set(STACKS), "delivery deploys every stack"
    prod_id, prod = by_stack["prod"]
    dev_id, _ = by_stack["dev"]

    def needs(job_id: str) -> set[str]:
        direct = doc["jobs"][job_id].get("needs", [])
        direct = [direct] if isinstance(direct, str) else direct
        return set(direct).union(*(needs(n) for n in direct)) if direct else set()

    assert dev_id in needs(prod_id), "prod waits for dev"
    assert ENVIRONMENTS[environment(prod)].reviewers, "prod needs an approval"


def test_every_preview_and_update_enforces_the_policy_pack() -> None:
    seen = set()
    for name, _, job_id, job in pulumi_jobs():
        for step in pulumi_steps(job):
            w, stack = step["with"], step["with"]["stack-name"]
            assert w["command"] in {"preview", "up"}, f"{name}:{job_id}: unexpected command {w['command']}"
            assert w.get("policyPacks") == "policies", f"{name}:{job_id}: pass the policy pack"
            config = f"policies/policy-config.{stack}.json"
            assert w.get("policyPackConfigs") == config, f"{name}:{job_id}: pass {config}"
            assert (ROOT / config).is_file(), config
            assert not w.get("expect-no-changes") or w["command"] == "preview"
            seen.add((name, stack, w["command"]))
    for stack in STACKS:
        assert ("preview.yml", stack, "preview") in seen, f"pull requests preview {stack}"
        assert ("delivery.yml", stack, "up") in seen, f"main is delivered to {stack}"
        assert ("renewal.yml", stack, "up") in seen, f"{stack} is renewed on a schedule"


def _version(spec: str) -> tuple[int, ...]:
    m = re.fullmatch(r"[\^~]?(?:>=)?(\d+)\.(\d+)\.(\d+)", spec.strip())
    assert m, f"pin the Pulumi CLI with a minimum version, got {spec!r}"
    return tuple(int(x) for x in m.groups())


def test_every_pulumi_cli_supports_replacement_triggers() -> None:
    for name, doc, job_id, job in jobs():
        for step in job.get("steps", []):
            if not str(step.get("uses", "")).startswith(PULUMI_ACTION):
                continue
            spec = str((step.get("with") or {}).get("pulumi-version", ""))
            spec = re.sub(r"\$\{\{\s*env\.(\w+)\s*}}", lambda m: str(doc.get("env", {}).get(m.group(1), "")), spec)
            assert _version(spec) >= MIN_PULUMI, f"{name}:{job_id}: Pulumi CLI {spec} < {MIN_PULUMI}"
            assert spec.startswith("^"), f"{name}:{job_id}: stay on major version 3 ({spec})"


def test_one_update_of_a_stack_at_a_time() -> None:
    groups: dict[str, set[str]] = {}
    for name, doc, job_id, job in pulumi_jobs():
        if not updates(job):
            continue
        assert not (doc.get("concurrency") or {}).get("cancel-in-progress"), \
            f"{name}: a workflow-level cancel-in-progress would cancel a running update"
        c = job.get("concurrency")
        assert isinstance(c, dict), f"{name}:{job_id}: job-level concurrency with cancel-in-progress: false"
        assert c.get("cancel-in-progress") is False, f"{name}:{job_id}: never cancel a running update"
        group = c.get("group")
        assert isinstance(group, str) and "${{" not in group, f"{name}:{job_id}: a literal group"
        stack = stack_of(job)
        assert re.search(rf"\b{re.escape(stack)}\b", group), f"{name}:{job_id}: group {group} names {stack}"
        groups.setdefault(stack, set()).add(group)
    assert all(len(g) == 1 for g in groups.values()), f"one group per stack across workflows: {groups}"
    flat = [next(iter(g)) for g in groups.values()]
    assert len(set(flat)) == len(flat), f"stacks must not share a group: {groups}"


def test_jobs_with_secrets_keep_the_github_token_read_only() -> None:
    for name, _, job_id, job in jobs():
        secret = bool(secrets_used(job) - {"GITHUB_TOKEN"})
        writes = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
        if secret:
            assert not writes, f"{name}:{job_id} holds stack secrets and {writes} write access"
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout"):
                    assert (step.get("with") or {}).get("persist-credentials") is False, \
                        f"{name}:{job_id}: checkout must not leave the token in .git/config"
        if writes:
            assert writes <= {"issues"}, f"{name}:{job_id}: unexpected write permissions {writes}"
            assert not environment(job) and not pulumi_steps(job), f"{name}:{job_id}"
            assert not any(str(s.get("uses", "")).startswith("actions/checkout") for s in job.get("steps", [])), \
                f"{name}:{job_id}: a job with write access runs no repository code"


@pytest.mark.parametrize("stack", STACKS)
def test_schedule_renews_every_certificate_before_its_window(stack: str) -> None:
    doc = workflows()["renewal.yml"]
    crons = [entry["cron"] for entry in triggers(doc)["schedule"]]
    pki = parse_settings(stack_config(stack), stack).pki
    margin = dt.timedelta(hours=renewal.margin_hours(pki.server_validity_hours, pki.early_renewal_hours))
    gap = longest_gap(crons)
    assert gap * (MISSED_RUNS_TOLERATED + 1) < margin, (
        f"{stack}: runs up to {gap} apart; the renewal margin {margin} must fit "
        f"{MISSED_RUNS_TOLERATED} missed runs plus one")
    # And the renewal job of that stack runs on that schedule with nothing that could skip it
    # other than the main-branch check.
    [job] = [j for j in doc["jobs"].values() if pulumi_steps(j) and stack_of(j) == stack]
    assert updates(job) and job.get("if") == ON_MAIN and "needs" not in job
