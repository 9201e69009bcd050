"""FunctionTool and the ``@tool`` decorator: a Python function as a tool.

The argument schema comes from the type hints (through pydantic) and the
descriptions from the docstring (Google ``Args:`` sections or Sphinx
``:param x:`` lines).
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import typing
from collections.abc import Callable
from typing import Any, overload

import anyio.to_thread
from pydantic import BaseModel, Field, ValidationError, create_model

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.tools.base import ArgumentsInvalid, BaseTool, ToolContext

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_OTHER_SECTION = re.compile(r"^\s*(Returns?|Raises|Yields|Examples?|Notes?|Attributes)\s*:\s*$")
_GOOGLE_ARG = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_ARG = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description and per-parameter descriptions."""
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    summary: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    in_args = False
    seen_section = False
    for line in lines:
        if _SECTION.match(line):
            in_args, seen_section, current = True, True, None
            continue
        if _OTHER_SECTION.match(line):
            in_args, seen_section, current = False, True, None
            continue
        sphinx = _SPHINX_ARG.match(line)
        if sphinx:
            seen_section = True
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            continue
        if line.lstrip().startswith(":"):
            seen_section, current = True, None
            continue
        if in_args:
            google = _GOOGLE_ARG.match(line)
            indent = len(line) - len(line.lstrip())
            if google and (current is None or indent <= _arg_indent(lines, current)):
                current = google.group(1)
                params[current] = google.group(2).strip()
            elif current is not None and line.strip():
                params[current] = f"{params[current]} {line.strip()}".strip()
            continue
        if current is not None and line.strip() and line.startswith(" "):
            params[current] = f"{params[current]} {line.strip()}".strip()
            continue
        if not seen_section:
            summary.append(line)
    return "\n".join(summary).strip(), params


def _arg_indent(lines: list[str], name: str) -> int:
    for line in lines:
        match = _GOOGLE_ARG.match(line)
        if match and match.group(1) == name:
            return len(line) - len(line.lstrip())
    return 0


class FunctionTool(BaseTool):
    """A tool that calls a Python function (sync or async).

    - Parameters become the argument schema; pydantic models, enums, literals,
      lists and optionals work as in pydantic.
    - A parameter annotated :class:`ToolContext` receives the call's context
      and is hidden from the model.
    - Sync functions run in a worker thread by default so they neither block
      the event loop nor serialise concurrent tool calls; pass
      ``run_in_thread=False`` for cheap pure functions.
    - ``requires_approval`` (True, or a predicate of the validated
      arguments) pauses the run for a human decision before each call.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        return_directly: bool = False,
        run_in_thread: bool = True,
        requires_approval: bool | Callable[[dict[str, Any]], bool] = False,
    ) -> None:
        if not callable(fn):
            raise ArgumentTypeError(f"FunctionTool needs a callable, got {fn!r}")
        tool_name = str(name or getattr(fn, "__name__", ""))
        summary, param_docs = parse_docstring(inspect.getdoc(fn) or "")
        self.fn = fn
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._run_in_thread = run_in_thread
        self._context_param: str | None = None
        self._fields: tuple[str, ...] = ()
        self._arguments_model = self._build_model(tool_name, fn, param_docs)
        schema = self._arguments_model.model_json_schema()
        schema.pop("title", None)
        schema.setdefault("properties", {})
        for prop in schema["properties"].values():
            # pydantic's per-field titles repeat the name and cost prompt tokens on every call.
            if isinstance(prop, dict):
                prop.pop("title", None)
        super().__init__(
            tool_name,
            description if description is not None else summary,
            schema,
            return_directly=return_directly,
        )
        self.requires_approval = requires_approval
        self.uses_context = self._context_param is not None
        """Whether the function takes a ToolContext (only then can it change session values)."""

    def _build_model(
        self, tool_name: str, fn: Callable[..., Any], docs: dict[str, str]
    ) -> type[BaseModel]:
        try:
            hints = _type_hints(fn)
        except Exception as exc:
            raise ConfigurationError(
                f"tool {tool_name!r}: cannot resolve type hints: {exc}"
            ) from exc
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(fn).parameters.items():
            annotation = hints.get(pname, Any)
            if _is_context(annotation):
                self._context_param = pname
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ConfigurationError(
                    f"tool {tool_name!r}: *args/**kwargs parameters cannot be described to a model"
                )
            if param.kind is param.POSITIONAL_ONLY:
                raise ConfigurationError(
                    f"tool {tool_name!r}: positional-only parameter {pname!r} is not supported"
                )
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (annotation, Field(default, description=docs.get(pname)))
        self._fields = tuple(fields)
        model_name = "".join(part.capitalize() for part in re.split(r"\W+", tool_name)) or "Tool"
        return create_model(f"{model_name}Arguments", **fields)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check ``arguments`` with the pydantic validator the schema was generated from.

        The validator is compiled once (by pydantic-core) when the tool is
        built; it accepts exactly what the schema describes, plus the usual
        lenient conversions (``"3"`` for an integer). Field validators of
        pydantic-model parameters run here too, so their errors reach the
        model as invalid arguments.
        """
        try:
            # The model's validator itself: model_validate only adds option checks.
            parsed = self._arguments_model.__pydantic_validator__.validate_python(arguments)
        except ValidationError as exc:
            raise ArgumentsInvalid(describe_validation_error(exc)) from None
        values: dict[str, Any] = parsed.__dict__.copy()
        return values

    async def call(self, arguments: dict[str, Any], ctx: ToolContext | None) -> Any:
        """Call the function with the arguments :meth:`validate` returned.

        ``ctx`` may be None for a function without a ToolContext parameter.
        """
        kwargs = arguments
        if self._context_param is not None:
            kwargs = {**arguments, self._context_param: ctx}
        if self._is_async:
            return await self.fn(**kwargs)
        if self._run_in_thread:
            result = await anyio.to_thread.run_sync(functools.partial(self.fn, **kwargs))
        else:
            result = self.fn(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolve ``fn``'s annotations, also against the locals of the frames that defined it.

    With ``from __future__ import annotations`` a parameter type defined
    inside a function (a test, a factory) is only a string; like pydantic,
    look it up in the enclosing frames' locals.
    """
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except NameError:
        frame = sys._getframe(1)
        local_names: dict[str, Any] = {}
        while frame is not None:
            local_names = {**frame.f_locals, **local_names}
            try:
                return typing.get_type_hints(fn, localns=local_names, include_extras=True)
            except NameError:
                frame = frame.f_back  # type: ignore[assignment]
        raise


def _is_context(annotation: Any) -> bool:
    """True for ``ToolContext`` and ``ToolContext | None``."""
    if annotation is ToolContext:
        return True
    args = typing.get_args(annotation)
    return (
        bool(args)
        and ToolContext in args
        and all(arg is ToolContext or arg is type(None) for arg in args)
    )


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """A short, model-readable account of what is wrong with the arguments."""
    parts = []
    for error in exc.errors(include_url=False)[:limit]:
        where = "/".join(str(part) for part in error["loc"])
        got = "" if error["type"] == "missing" else f" (got {error['input']!r})"
        parts.append(f"at '{where}': {error['msg']}{got}" if where else f"{error['msg']}{got}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more error(s)")
    return "; ".join(parts)


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    return_directly: bool = False,
    run_in_thread: bool = True,
    requires_approval: bool | Callable[[dict[str, Any]], bool] = False,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    return_directly: bool = False,
    run_in_thread: bool = True,
    requires_approval: bool | Callable[[dict[str, Any]], bool] = False,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a function a tool: ``@tool`` or ``@tool(name=..., requires_approval=True)``."""

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            f,
            name=name,
            description=description,
            return_directly=return_directly,
            run_in_thread=run_in_thread,
            requires_approval=requires_approval,
        )

    return wrap(fn) if fn is not None else wrap
