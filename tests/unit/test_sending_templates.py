"""Template problems are found before a send: each names its field and line; merge
fields, defaults and escaping render as documented."""

from __future__ import annotations

import pytest

from mailshot.esp.sending.compose import check_template, compile_message
from mailshot.esp.sending.merge import TemplateProblem
from tests.support.sending_samples import content, context, parse, part, recipient


def _problems(**changes: str | None) -> list[TemplateProblem]:
    return check_template(content(**changes))


def _one(**changes: str | None) -> TemplateProblem:
    found = _problems(**changes)
    assert len(found) == 1, found
    return found[0]


def test_the_sample_campaign_has_no_problem() -> None:
    assert _problems() == []


def test_a_syntax_error_names_field_and_line() -> None:
    problem = _one(html="<p>Hi</p>\n<p>{{ first_name </p>\n")
    assert (problem.field, problem.line) == ("html", 2)
    assert "syntax error" in problem.message
    problem = _one(text="a\nb\n{% if first_name %}\nno end\n")
    assert problem.field == "text" and problem.line is not None and problem.line >= 3


def test_an_unknown_field_names_field_line_and_the_likely_one() -> None:
    problem = _one(text="Hello\n\n{{ frist_name }}\n")
    assert (problem.field, problem.line) == ("text", 3)
    assert "'frist_name'" in problem.message and "'first_name'" in problem.message
    assert str(problem).startswith("text, line 3: unknown field")
    problem = _one(subject="Hi {{ nickname }}")
    assert (problem.field, problem.line) == ("subject", 1)


def test_names_set_in_the_template_are_not_unknown() -> None:
    assert _problems(text="{% set who = first_name or 'you' %}Hi {{ who }}\n") == []
    assert _problems(text="{% for w in ['a', 'b'] %}{{ w }}{% endfor %}\n") == []


def test_an_unknown_filter_names_field_and_line() -> None:
    problem = _one(html="<p>\n\n{{ first_name | shout }}</p>")
    assert (problem.field, problem.line) == ("html", 3)
    assert "unknown filter 'shout'" in problem.message
    # inside an if, Jinja itself would only fail when the branch runs
    problem = _one(text="{% if organisation %}\n{{ organisation | uppr }}{% endif %}\n")
    assert (problem.field, problem.line) == ("text", 2)
    assert "did you mean 'upper'" in problem.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ first_name.__class__.__mro__ }}",
        "{{ custom['__dict__'] }}",
        "{{ first_name | attr('__class__') }}",
    ],
)
def test_a_sandbox_violation_names_field_and_line(source: str) -> None:
    found = _problems(html=f"<p>ok</p>\n<p>{source}</p>")
    assert found and all((p.field, p.line) == ("html", 2) for p in found)
    assert all("sandboxed" in p.message for p in found)


def test_a_runtime_failure_is_found_by_the_trial_render() -> None:
    problem = _one(text="line one\n{{ first_name + 1 }}\n")
    assert (problem.field, problem.line) == ("text", 2)
    assert "cannot be rendered" in problem.message


def test_including_other_templates_is_refused() -> None:
    problem = _one(html="{% include 'x.html' %}")
    assert problem.field == "html" and "include" in problem.message


def test_unknown_custom_fields_are_refused_when_the_fields_are_known() -> None:
    source = "Size {{ custom.size }}\nColour {{ custom.colour }}\n"
    assert check_template(content(html=None, text=source)) == []
    found = check_template(content(html=None, text=source), custom_fields=frozenset({"size"}))
    assert [(p.field, p.line) for p in found] == [("text", 2)]
    assert "'colour'" in found[0].message


def test_no_body_is_a_problem() -> None:
    problem = _one(html=None, text=None)
    assert "no HTML or text body" in problem.message


def test_compile_raises_the_first_problem_before_any_render() -> None:
    with pytest.raises(TemplateProblem) as raised:
        compile_message(content(text="ok\n{{ nope }}\n"), context())
    assert (raised.value.field, raised.value.line) == ("text", 2)


def _render(**changes: object) -> tuple[str, str, str]:
    compiled = compile_message(content(), context())
    message = parse(compiled.render(recipient(**changes)).data)
    return str(message["Subject"]), part(message, "text/plain"), part(message, "text/html")


def test_defaults_apply_to_missing_empty_and_blank_values() -> None:
    for missing in ("", "   ", None):
        subject, text, html = _render(first_name=missing, custom={})
        assert subject == "News for you"
        assert text.startswith("Hello there,")
        assert "<h1>Hello there,</h1>" in html
        assert "<p>no size</p>" in html
    subject, text, html = _render(first_name="Zoë")
    assert subject == "News for Zoë" and text.startswith("Hello Zoë,")


def test_none_renders_empty_and_custom_fields_merge() -> None:
    _subject, text, html = _render(last_name=None, custom={"size": "XL", "code": "Q"})
    assert text.splitlines()[3] == "Yours, "
    assert "<p>XL</p>" in html


def test_html_is_escaped_and_text_and_subject_are_not() -> None:
    subject, text, html = _render(first_name="<script>alert(1)</script>", organisation="A&B")
    assert "<script>" not in html
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;," in html
    assert "News for A&amp;B &amp; friends." in html
    assert text.startswith("Hello <script>alert(1)</script>,")
    assert subject == "News for <script>alert(1)</script>"


def test_custom_fields_expose_no_dict_methods() -> None:
    compiled = compile_message(content(text="[{{ custom.items }}][{{ custom.keys }}]\n"), context())
    message = parse(compiled.render(recipient(custom={"size": "M"})).data)
    assert part(message, "text/plain").startswith("[][]")


def test_a_header_injection_in_a_merge_field_stays_in_the_subject() -> None:
    compiled = compile_message(content(subject="Hi {{ first_name }}"), context())
    rendered = compiled.render(recipient(first_name="Ann\r\nBcc: victim@example.com"))
    message = parse(rendered.data)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hi Ann  Bcc: victim@example.com"
