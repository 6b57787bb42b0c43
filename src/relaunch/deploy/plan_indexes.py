"""Deploy steps for the Firestore composite indexes the run store's queries need (adapters/gcp/firestore_indexes.py).

The indexes go on the database and collections the functions will use: RELAUNCH_FIRESTORE_DATABASE and
RELAUNCH_FIRESTORE_PREFIX from the functions' environment, else the settings' defaults.

The check lists the database's composite indexes and keeps the one with exactly these fields: gcloud filters the
listing on our side (the API lists every collection group), and Firestore lists an index with `__name__` appended
in the direction of its last field (the Index resource of the Firestore Admin API v1:
https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.collectionGroups.indexes). It prints the
collection group when the index exists, nothing when not: then the runner creates it. An index still building is
listed too, so a second deploy never tries to create it twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from relaunch.adapters.gcp.firestore_indexes import REQUIRED_INDEXES, Index
from relaunch.deploy.infra import Infra
from relaunch.deploy.step import Step, gcloud
from relaunch.settings import Settings


def index_steps(infra: Infra) -> Iterable[Step]:
    """One step per index the store needs, in the section that makes the database."""
    defaults = Settings.model_fields
    database = infra.env.get("RELAUNCH_FIRESTORE_DATABASE", defaults["firestore_database"].default)
    prefix = infra.env.get("RELAUNCH_FIRESTORE_PREFIX", defaults["firestore_prefix"].default)
    for index in REQUIRED_INDEXES:
        yield _index_step(infra.project, f"--database={database}", prefix, index)


def _index_step(project: str, database: str, prefix: str, index: Index) -> Step:
    group = index.collection_group(prefix)
    listed = (*index.fields, ("__name__", index.fields[-1][1]))
    match = (
        f"name.segment(-3)={group} AND queryScope=COLLECTION"
        f' AND fields.fieldPath.list()="{",".join(name for name, _ in listed)}"'
        f' AND fields.order.list()="{",".join(order for _, order in listed)}"'
    )
    describe = gcloud(project, "firestore", "indexes", "composite", "list", database, f"--filter={match}",
                      "--format=value(name.segment(-3))")  # fmt: skip
    configs = [f"--field-config=field-path={name},order={order.lower()}" for name, order in index.fields]
    create = gcloud(project, "firestore", "indexes", "composite", "create", f"--collection-group={group}",
                    "--query-scope=collection", *configs, database)  # fmt: skip
    return Step(f"firestore index {index.describe(prefix)}", "storage", describe, create, expect=group, update=create)
