"""Signatures and parameters: binding call arguments, validating them with pydantic, the parameter JSON schema, run-name templates."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from flowplane.exceptions import ParameterBindError, ParameterTypeError

_POS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VAR_POS = inspect.Parameter.VAR_POSITIONAL
_KW_ONLY = inspect.Parameter.KEYWORD_ONLY
_VAR_KW = inspect.Parameter.VAR_KEYWORD


class CallShape:
    """A function's signature, prepared for fast binding and unbinding of parameters."""

    __slots__ = ("fn", "signature", "kinds", "has_defaults", "_model", "_plain")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.kinds = [(p.name, p.kind) for p in self.signature.parameters.values()]
        self.has_defaults = any(
            p.default is not inspect.Parameter.empty for p in self.signature.parameters.values()
        )
        self._model: Any = None
        #: Parameter names, when all are plain positional-or-keyword (the fast path).
        self._plain: tuple[str, ...] | None = (
            tuple(name for name, _ in self.kinds)
            if all(kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for _, kind in self.kinds)
            else None
        )

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Call arguments as a ``{parameter: value}`` dict, defaults applied.

        Raises:
            ParameterBindError: the arguments do not fit the signature.
        """
        plain = self._plain
        if plain is not None and not kwargs and len(args) == len(plain):
            return dict(zip(plain, args, strict=True))
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            name = getattr(self.fn, "__name__", repr(self.fn))
            raise ParameterBindError(
                f"Error binding parameters for function {name!r}: {exc}. Function {name!r} "
                f"has signature {self.signature} but received args: {args!r} and kwargs: "
                f"{sorted(kwargs)}."
            ) from None
        if self.has_defaults:
            bound.apply_defaults()
        return dict(bound.arguments)

    def unbind(self, parameters: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The ``(args, kwargs)`` to call the function with, from a parameters dict."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        positional = True
        for name, kind in self.kinds:
            if name not in parameters:
                positional = False
                continue
            value = parameters[name]
            if kind in _POS and positional:
                args.append(value)
            elif kind is _VAR_POS:
                args.extend(value)
            elif kind is _VAR_KW:
                kwargs.update(value)
            else:
                kwargs[name] = value
        return args, kwargs

    # --- validation (flows) ---

    def _validator(self) -> Any:
        if self._model is None:
            import pydantic

            try:
                hints = typing.get_type_hints(self.fn, include_extras=True)
            except Exception:  # unresolved forward references: validate what we can
                hints = {}
            fields: dict[str, Any] = {}
            for param in self.signature.parameters.values():
                annotation = hints.get(param.name, param.annotation)
                if annotation is inspect.Parameter.empty or isinstance(annotation, str):
                    annotation = Any
                default = ... if param.default is inspect.Parameter.empty else param.default
                if param.kind is _VAR_POS:
                    annotation, default = tuple[annotation, ...], ()  # type: ignore[valid-type]
                elif param.kind is _VAR_KW:
                    annotation, default = dict[str, annotation], {}  # type: ignore[valid-type]
                fields[_field_name(param.name)] = (
                    annotation,
                    pydantic.Field(default, alias=param.name),
                )
            self._model = pydantic.create_model(  # type: ignore[call-overload]
                "Parameters",
                __config__=pydantic.ConfigDict(arbitrary_types_allowed=True, populate_by_name=True),
                **fields,
            )
        return self._model

    def validate(self, parameters: dict[str, Any], what: str) -> dict[str, Any]:
        """``parameters`` coerced and checked against the annotations.

        Raises:
            ParameterTypeError: a value does not fit its annotation (all problems listed).
        """
        import pydantic

        model = self._validator()
        try:
            validated = model.model_validate(parameters)
        except pydantic.ValidationError as exc:
            problems = "\n".join(
                f" - {'.'.join(str(p) for p in err['loc'])}: {err['msg']} "
                f"(got {err.get('input')!r})"
                for err in exc.errors()
            )
            raise ParameterTypeError(f"{what} received invalid parameters:\n{problems}") from None
        return {
            name: getattr(validated, _field_name(name))
            for name in parameters
            if _field_name(name) in model.model_fields
        }

    def json_schema(self, title: str = "Parameters") -> dict[str, Any]:
        """The parameters' JSON schema, as Prefect's ``ParameterSchema`` shapes it."""
        try:
            schema = self._validator().model_json_schema(by_alias=True)
        except Exception:  # an annotation pydantic cannot describe
            schema = {
                "properties": {name: {"title": name} for name, _ in self.kinds},
                "required": [],
            }
        properties = schema.get("properties", {})
        for position, (name, _) in enumerate(self.kinds):
            if name in properties:
                properties[name]["position"] = position
        return {
            "title": title,
            "type": "object",
            "properties": properties,
            "required": schema.get("required", []),
            "definitions": schema.get("$defs", {}),
        }


def _field_name(name: str) -> str:
    # pydantic reserves names starting with "model_" and underscores; alias keeps the real one.
    return f"p_{name}" if name.startswith(("model_", "_")) else name


def render_run_name(
    template: str | Callable[..., str] | None, parameters: dict[str, Any]
) -> str | None:
    """A run name from a ``str.format`` template over the parameters, or from a callable.

    A callable is called with no arguments, or with ``parameters=`` if it accepts it.

    Raises:
        TypeError: the callable did not return a string.
    """
    if template is None:
        return None
    if isinstance(template, str):
        return template.format(**parameters)
    try:
        accepts = "parameters" in inspect.signature(template).parameters
    except (TypeError, ValueError):
        accepts = False
    name = template(parameters=parameters) if accepts else template()
    if not isinstance(name, str):
        raise TypeError(
            f"A run name callable must return a string, got {type(name).__name__}: {name!r}"
        )
    return name
