"""Merge fields: the sandboxed Jinja2 environments, what a template may name, and template
problems found before a send starts (each names its field, subject/html/text, and line).

Fields: ``first_name``, ``last_name``, ``email``, ``organisation``, ``list_name``,
``unsubscribe_url`` and the CRM's custom fields under ``custom`` (``{{ custom.size }}``,
or ``{{ custom["shoe size"] }}`` for a name that is not an identifier); a custom field a
recipient lacks renders empty. Any other name is a template problem. ``default`` treats
undefined, None and blank strings as missing, so ``{{ first_name | default("there") }}``
works for an empty first name (``boolean=True`` keeps Jinja's "any false value").
HTML is autoescaped; text and subject are not. Templates cannot include or import others.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import Template, TemplateAssertionError, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

FIELDS = ("subject", "html", "text")
KNOWN_NAMES = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "organisation",
        "custom",
        "list_name",
        "unsubscribe_url",
    }
)
#: Names the compiler injects (tracking links, the open pixel); templates cannot use them.
LINKS_NAME = "mailshot_links"
OPEN_NAME = "mailshot_open"
INJECTED_NAMES = frozenset({LINKS_NAME, OPEN_NAME})


class TemplateProblem(Exception):  # noqa: N818  # the name the send API and preflight use
    """A template that cannot be rendered: which field, which line (1-based), and why."""

    def __init__(self, field: str, line: int | None, message: str) -> None:
        where = f"{field}, line {line}" if line else field
        super().__init__(f"{where}: {message}")
        self.field = field
        self.line = line
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TemplateProblem) and (
            (self.field, self.line, self.message) == (other.field, other.line, other.message)
        )

    def __hash__(self) -> int:
        return hash((self.field, self.line, self.message))


class _Undefined(Undefined):
    """Renders empty, except a value the sandbox refused, which raises SecurityError."""

    __slots__ = ()

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        return ""


class CustomFields:
    """A recipient's custom fields as a template sees them: ``custom.name`` or
    ``custom["name"]``, and nothing else (no dict methods)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    if isinstance(value, Undefined) or value is None:
        return default_value
    if isinstance(value, str) and not value.strip():
        return default_value
    if boolean and not value:
        return default_value
    return value


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=autoescape,
        undefined=_Undefined,
        finalize=_finalize,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.globals.clear()
    env.filters["default"] = env.filters["d"] = _default
    return env


HTML_ENV = _environment(autoescape=True)
TEXT_ENV = _environment(autoescape=False)


def environment(field: str) -> SandboxedEnvironment:
    return HTML_ENV if field == "html" else TEXT_ENV


def compile_template(field: str, source: str) -> Template:
    """A compiled template (a source already checked, perhaps with injected names)."""
    env = environment(field)
    code = env.compile(source, name=field, filename=f"<{field}>")
    return env.template_class.from_code(env, code, env.make_globals(None))


def chunks(template: Template, values: dict[str, Any]) -> Iterator[str]:
    """The strings a template yields for ``values``, its static pieces as they are."""
    return template.root_render_func(template.new_context(values, shared=True))


def static_strings(template: Template) -> set[str]:
    """Every string constant of a compiled template: its static pieces among them."""
    found: set[str] = set()
    stack = [template.root_render_func.__code__]
    while stack:
        code = stack.pop()
        for const in code.co_consts:
            if isinstance(const, str):
                found.add(const)
            elif isinstance(const, types.CodeType):
                stack.append(const)
    return found


def line_of(template: Template, exc: BaseException) -> int | None:
    """The template line an exception raised from, if it came from its code."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == template.filename:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def problem_from(field: str, template: Template, exc: Exception) -> TemplateProblem:
    if isinstance(exc, SecurityError):
        message = f"not allowed in a template (templates are sandboxed): {exc}"
    else:
        message = f"cannot be rendered: {exc}"
    return TemplateProblem(field, line_of(template, exc), message)


def check_source(
    field: str,
    source: str,
    custom_fields: frozenset[str] | None = None,
    allowed: frozenset[str] = frozenset(),
) -> list[TemplateProblem]:
    """Every problem of one field's template that can be found without rendering it
    (``allowed``: names the compiler injected besides the fields)."""
    env = environment(field)
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(field, exc.lineno, f"syntax error: {exc.message}")]
    problems: list[TemplateProblem] = []
    try:
        unknown = meta.find_undeclared_variables(ast) - KNOWN_NAMES - allowed
    except TemplateAssertionError:  # an unknown filter or test: reported below
        unknown = set()
    for node in ast.find_all(nodes.Name):
        if node.name in unknown and node.ctx == "load":
            unknown.discard(node.name)
            problems.append(TemplateProblem(field, node.lineno, _unknown_name(node.name)))
    for access in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(access, (nodes.Getattr, nodes.Getitem))
        key = access.attr if isinstance(access, nodes.Getattr) else _const(access.arg)
        if isinstance(key, str) and key.startswith("_"):
            problems.append(TemplateProblem(field, access.lineno, _unsafe(key)))
        elif (
            custom_fields is not None
            and isinstance(access.node, nodes.Name)
            and access.node.name == "custom"
            and isinstance(key, str)
            and key not in custom_fields
        ):
            problems.append(
                TemplateProblem(field, access.lineno, _unknown_custom(key, custom_fields))
            )
    for call in ast.find_all((nodes.Filter, nodes.Test)):
        assert isinstance(call, (nodes.Filter, nodes.Test))
        known = env.filters if isinstance(call, nodes.Filter) else env.tests
        kind = "filter" if isinstance(call, nodes.Filter) else "test"
        if call.name not in known:
            close = difflib.get_close_matches(call.name, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                TemplateProblem(field, call.lineno, f"unknown {kind} {call.name!r}{hint}")
            )
        elif call.name == "attr" and call.args:
            key = _const(call.args[0])
            if not isinstance(key, str) or key.startswith("_"):
                problems.append(TemplateProblem(field, call.lineno, _unsafe(str(key))))
    for statement in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        problems.append(
            TemplateProblem(field, statement.lineno, "a template cannot include or import another")
        )
    return sorted(set(problems), key=lambda p: (p.line or 0, p.message))


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def _unknown_name(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(KNOWN_NAMES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    fields = ", ".join(sorted(KNOWN_NAMES))
    return f"unknown field {name!r}{hint} The fields are {fields} (custom fields: custom.NAME)"


def _unknown_custom(name: str, custom_fields: frozenset[str]) -> str:
    known = ", ".join(sorted(custom_fields)) or "none"
    return f"unknown custom field {name!r} (the custom fields are: {known})"


def _unsafe(attribute: str) -> str:
    return f"the attribute {attribute!r} is not allowed in a template (templates are sandboxed)"


def sample_values() -> list[dict[str, Any]]:
    """Recipients a template is tried with before a send: every field set, and none."""
    full = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "organisation": "Analytical Engines",
        "custom": CustomFields({}),
        "list_name": "Sample list",
        "unsubscribe_url": "https://example.com/u/sample",
    }
    empty = dict.fromkeys(full, "") | {"custom": CustomFields({})}
    return [full, empty]


def trial(field: str, source: str) -> TemplateProblem | None:
    """Render a checked template with the sample recipients; the first problem, if any."""
    template = compile_template(field, source)
    for values in sample_values():
        try:
            "".join(chunks(template, values))
        except Exception as exc:  # any failure of a user's template is its problem
            return problem_from(field, template, exc)
    return None
