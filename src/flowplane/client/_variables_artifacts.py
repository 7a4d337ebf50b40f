"""Client operations on variables (create, read, list, update, delete, and ``set_variable``) and artifacts."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from uuid import UUID

from flowplane.client._operations import as_uuid, body, dump, enum_value, operation
from flowplane.client._protocol import Call, model, models, nothing, value
from flowplane.exceptions import ObjectAlreadyExists, ObjectNotFound

if TYPE_CHECKING:
    from flowplane.schemas.artifacts import (
        Artifact,
        ArtifactCollection,
        ArtifactCollectionFilter,
        ArtifactCreate,
        ArtifactFilter,
        ArtifactSort,
        ArtifactUpdate,
    )
    from flowplane.schemas.filters import FlowFilter, FlowRunFilter, TaskRunFilter
    from flowplane.schemas.variables import (
        Variable,
        VariableCreate,
        VariableFilter,
        VariableSort,
        VariableUpdate,
    )

# The variable and artifact models are imported where a call needs them: a process that
# never touches either (most flow runs) does not build their pydantic models.

Filter = Any  # a filter model or its JSON as a dict


def _name(name: str) -> str:
    return quote(name, safe="")


class VariableOperations:
    """Variables: named JSON values shared by flows, tasks and deployments."""

    @operation
    def create_variable(self, variable: VariableCreate | dict[str, Any]) -> Call[Variable]:
        """Create a variable.

        Raises:
            ObjectAlreadyExists: a variable has that name.
            ValidationFailed: the name or value is not allowed.
        """
        from flowplane.schemas.variables import Variable

        return Call("POST", "/variables/", model(Variable), json=dump(variable))

    @operation
    def read_variable_by_name(self, name: str) -> Generator[Call[Any], Any, Variable | None]:
        """The variable called ``name``, or ``None`` if there is none (as Prefect's client answers)."""
        from flowplane.schemas.variables import Variable

        try:
            return (yield Call("GET", f"/variables/name/{_name(name)}", model(Variable)))
        except ObjectNotFound:
            return None

    @operation
    def read_variable(self, variable_id: UUID | str) -> Call[Variable]:
        """Read a variable by id.

        Raises:
            ObjectNotFound: no variable has that id.
        """
        from flowplane.schemas.variables import Variable

        return Call("GET", f"/variables/{as_uuid(variable_id)}", model(Variable))

    @operation
    def read_variables(
        self,
        limit: int | None = None,
        *,
        variable_filter: VariableFilter | dict[str, Any] | None = None,
        sort: VariableSort | str | None = None,
        offset: int = 0,
    ) -> Call[list[Variable]]:
        """List variables (by name unless ``sort`` says otherwise)."""
        from flowplane.schemas.variables import Variable

        payload = body(variables=variable_filter, sort=enum_value(sort), limit=limit, offset=offset)
        return Call("POST", "/variables/filter", models(Variable), json=payload)

    @operation
    def count_variables(
        self, *, variable_filter: VariableFilter | dict[str, Any] | None = None
    ) -> Call[int]:
        """Count the variables matching ``variable_filter``."""
        return Call("POST", "/variables/count", value(int), json=body(variables=variable_filter))

    @operation
    def update_variable(self, variable: VariableUpdate | dict[str, Any]) -> Call[None]:
        """Change the variable named in ``variable`` (its ``name`` says which).

        Raises:
            ObjectNotFound: no variable has that name.
        """
        data = dump(variable)
        return Call("PATCH", f"/variables/name/{_name(data['name'])}", nothing, json=data)

    @operation
    def delete_variable_by_name(self, name: str) -> Call[None]:
        """Delete the variable called ``name``.

        Raises:
            ObjectNotFound: no variable has that name.
        """
        return Call("DELETE", f"/variables/name/{_name(name)}", nothing)

    @operation
    def set_variable(
        self, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Generator[Call[Any], Any, Variable]:
        """Create the variable, or with ``overwrite`` replace the value and tags of an existing one.

        Raises:
            ValueError: it exists and ``overwrite`` is False.
            ValidationFailed: the name or value is not allowed.
        """
        from flowplane.schemas.variables import Variable, VariableCreate

        create = VariableCreate(name=name, value=value, tags=list(tags or []))
        try:
            return (yield Call("POST", "/variables/", model(Variable), json=dump(create)))
        except ObjectAlreadyExists:
            if not overwrite:
                raise ValueError(
                    f"Variable {name!r} already exists. Use `overwrite=True` to update it."
                ) from None
        change = {"value": value, "tags": list(tags or [])}
        yield Call("PATCH", f"/variables/name/{_name(name)}", nothing, json=change)
        return (yield Call("GET", f"/variables/name/{_name(name)}", model(Variable)))

    @operation
    def unset_variable(self, name: str) -> Generator[Call[Any], Any, bool]:
        """Delete the variable called ``name``; False if there was none."""
        try:
            yield Call("DELETE", f"/variables/name/{_name(name)}", nothing)
        except ObjectNotFound:
            return False
        return True


class ArtifactOperations:
    """Artifacts: data runs publish for people, and the latest artifact of each key."""

    @operation
    def create_artifact(self, artifact: ArtifactCreate | dict[str, Any]) -> Call[Artifact]:
        """Create an artifact.

        Raises:
            ValidationFailed: a bad key, or progress outside 0-100.
        """
        from flowplane.schemas.artifacts import Artifact, ArtifactCreate

        data = (
            artifact.model_dump(mode="json", exclude_unset=True)
            if isinstance(artifact, ArtifactCreate)
            else dump(artifact)
        )
        return Call("POST", "/artifacts/", model(Artifact), json=data)

    @operation
    def read_artifact(self, artifact_id: UUID | str) -> Call[Artifact]:
        """Read an artifact by id.

        Raises:
            ObjectNotFound: no artifact has that id.
        """
        from flowplane.schemas.artifacts import Artifact

        return Call("GET", f"/artifacts/{as_uuid(artifact_id)}", model(Artifact))

    @operation
    def read_latest_artifact(self, key: str) -> Generator[Call[Any], Any, Artifact | None]:
        """The newest artifact with ``key``, or ``None`` if there is none."""
        from flowplane.schemas.artifacts import Artifact

        try:
            return (yield Call("GET", f"/artifacts/{_name(key)}/latest", model(Artifact)))
        except ObjectNotFound:
            return None

    @operation
    def read_artifacts(
        self,
        *,
        artifact_filter: ArtifactFilter | dict[str, Any] | None = None,
        flow_run_filter: FlowRunFilter | dict[str, Any] | None = None,
        task_run_filter: TaskRunFilter | dict[str, Any] | None = None,
        flow_filter: FlowFilter | dict[str, Any] | None = None,
        sort: ArtifactSort | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Call[list[Artifact]]:
        """List artifacts matching every filter given (newest id first unless ``sort``)."""
        from flowplane.schemas.artifacts import Artifact

        payload = body(
            artifacts=artifact_filter,
            flow_runs=flow_run_filter,
            task_runs=task_run_filter,
            flows=flow_filter,
            sort=enum_value(sort),
            limit=limit,
            offset=offset,
        )
        return Call("POST", "/artifacts/filter", models(Artifact), json=payload)

    @operation
    def read_latest_artifacts(
        self,
        *,
        artifact_filter: ArtifactCollectionFilter | dict[str, Any] | None = None,
        flow_run_filter: FlowRunFilter | dict[str, Any] | None = None,
        task_run_filter: TaskRunFilter | dict[str, Any] | None = None,
        flow_filter: FlowFilter | dict[str, Any] | None = None,
        sort: ArtifactSort | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Call[list[ArtifactCollection]]:
        """List the latest artifact of each key, for the keys matching every filter given."""
        from flowplane.schemas.artifacts import ArtifactCollection

        payload = body(
            artifacts=artifact_filter,
            flow_runs=flow_run_filter,
            task_runs=task_run_filter,
            flows=flow_filter,
            sort=enum_value(sort),
            limit=limit,
            offset=offset,
        )
        return Call("POST", "/artifacts/latest/filter", models(ArtifactCollection), json=payload)

    @operation
    def count_artifacts(
        self, *, artifact_filter: ArtifactFilter | dict[str, Any] | None = None
    ) -> Call[int]:
        """Count the artifacts matching ``artifact_filter``."""
        return Call("POST", "/artifacts/count", value(int), json=body(artifacts=artifact_filter))

    @operation
    def update_artifact(
        self, artifact_id: UUID | str, artifact: ArtifactUpdate | dict[str, Any]
    ) -> Call[None]:
        """Change an artifact's data, description or metadata (only the fields given).

        Raises:
            ObjectNotFound: no artifact has that id.
            ValidationFailed: progress outside 0-100.
        """
        return Call("PATCH", f"/artifacts/{as_uuid(artifact_id)}", nothing, json=dump(artifact))

    @operation
    def delete_artifact(self, artifact_id: UUID | str) -> Call[None]:
        """Delete an artifact (the previous one of its key becomes the latest).

        Raises:
            ObjectNotFound: no artifact has that id.
        """
        return Call("DELETE", f"/artifacts/{as_uuid(artifact_id)}", nothing)
