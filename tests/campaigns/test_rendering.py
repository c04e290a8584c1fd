"""Email templates: save-time checks, the sandbox at render time, CSS inlining, links, the text part."""

import time

import pytest

from campaigns.lib.rendering import (
    LOOP_BUDGET,
    MERGE_FIELDS,
    RenderError,
    TemplateProblem,
    check_template,
    compile_campaign,
    find_template_problems,
    subscriber_context,
)

ATTRIBUTES = {"company", "plan", "tags"}


def check(html="", *, subject="Hello", preheader="", text="", attribute_keys=ATTRIBUTES):
    check_template(subject=subject, preheader=preheader, html=html, text=text, attribute_keys=attribute_keys)


def problem(html="", **kwargs) -> TemplateProblem:
    with pytest.raises(TemplateProblem) as caught:
        check(html, **kwargs)
    return caught.value


def context(name="Ada Lovelace", email="ada@example.com", **attributes):
    return {
        "subscriber": subscriber_context(email=email, name=name, attributes=attributes),
        "campaign": {"name": "Spring sale"},
        "unsubscribe_url": "https://herald.test/u/UNSUB/",
        "preferences_url": "https://herald.test/u/UNSUB/preferences/",
        "view_in_browser_url": "https://herald.test/v/VIEW/",
    }


def render(html="", *, subject="Hi", preheader="", text="", ctx=None, **kwargs):
    compiled = compile_campaign(subject=subject, preheader=preheader, html=html, text=text)
    return compiled.render(context=ctx or context(), **kwargs)


# --- save-time checks ------------------------------------------------------------------------


def test_a_template_using_every_documented_field_passes():
    check(
        "<p>{{ subscriber.first_name | default('there') }} {{ subscriber.last_name }} {{ subscriber.name }}"
        " {{ subscriber.email }} {{ subscriber.company }} {{ subscriber['plan'] }} {{ campaign.name }}</p>"
        '<a href="{{ unsubscribe_url }}">u</a> <a href="{{ preferences_url }}">p</a>'
        ' <a href="{{ view_in_browser_url }}">v</a>'
        "{% for tag in subscriber.tags %}{{ loop.index }}. {{ tag | upper }}{% endfor %}"
        "{% if subscriber.plan == 'pro' %}Pro{% else %}Free{% endif %}{% set greeting = 'Hi' %}{{ greeting }}",
        subject="{{ subscriber.first_name | default('Friend') }}, our {{ campaign.name }}",
        preheader="For {{ subscriber.email }}",
        text="Hi {{ subscriber.name }}",
    )


def test_merge_fields_document_what_a_template_may_reference():
    assert {"subscriber.email", "subscriber.first_name", "campaign.name", "unsubscribe_url"} <= set(MERGE_FIELDS)


def test_a_syntax_error_names_the_field_and_line():
    error = problem("<p>Hello</p>\n<p>{{ subscriber.name }</p>")
    assert error.field == "html"
    assert error.line == 2
    assert "HTML body, line 2" in str(error)


def test_an_unclosed_block_is_reported():
    error = problem("{% if subscriber.plan %}<p>Pro</p>")
    assert "endif" in error.message


def test_an_unknown_subscriber_field_is_reported_with_what_is_available():
    error = problem("<p>{{ subscriber.compnay }}</p>")
    assert "subscriber.compnay" in error.message
    assert "subscriber.company" in error.message  # the list of what exists, to spot the typo


def test_an_unknown_top_level_name_is_reported():
    error = problem("", subject="x", text="Hi {{ first_name }}")
    assert error.field == "text"
    assert "'first_name'" in error.message


def test_an_unknown_campaign_field_is_reported():
    assert "campaign.owner" in problem("{{ campaign.owner }}").message


def test_the_subject_is_checked_too():
    error = problem("<p>x</p>", subject="Hi {{ subscriber.nmae }}")
    assert error.field == "subject"


def test_an_empty_subject_or_body_is_refused():
    assert problem("<p>x</p>", subject=" ").field == "subject"
    assert "HTML body, a text body" in problem("", text="").message


def test_find_template_problems_reports_each_faulty_field():
    problems = find_template_problems(
        subject="{{ nope }}", preheader="", html="{{ subscriber.name }", text="{{ x }}", attribute_keys=ATTRIBUTES
    )
    assert [p.field for p in problems] == ["subject", "html", "text"]


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self }}",
        "{{ self.__init__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ range(10**9) | list }}",
        "{{ 10**9 }}",
        "{{ subscriber._secret }}",
        "{{ subscriber['__class__'] }}",
        "{{ subscriber.name.upper() }}",
        "{{ subscriber.name | attr('__class__') }}",
        "{{ subscriber.name | safe }}",
        "{{ subscriber.tags | sort(attribute='__class__') }}",
        "{{ subscriber.tags | sum(attribute='x.__class__') }}",
        "{{ '{0.__class__}' | format(subscriber) }}",
        "{{ settings.SECRET_KEY }}",
        "{{ config }}",
        "{{ request.user }}",
        "{{ lipsum() }}",
        "{% include '/etc/passwd' %}",
        "{% extends 'base.html' %}",
        "{% import 'x' as x %}",
        "{% macro boom() %}{{ boom() }}{% endmacro %}",
        "{% autoescape false %}{{ subscriber.name }}{% endautoescape %}",
        "{% for a in subscriber.tags %}{% for b in a %}{% for c in b %}{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_reaching_outside_the_context_is_refused_at_save_time(source):
    with pytest.raises(TemplateProblem):
        check(source)
    with pytest.raises(TemplateProblem):
        compile_campaign(subject="Hi", preheader="", html=source, text="")


# --- the sandbox at render time (a template that was never checked) ---------------------------


def sandbox_render(source, ctx=None, **values):
    """Render with the sandboxed environment directly, bypassing the static check."""
    from campaigns.lib.rendering import _HTML_ENV, _from_source

    template = _from_source(source, _HTML_ENV)
    return template.render({**(ctx or context()), **values})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ self }}",
        "{{ self.__init__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ range(10**9) }}",
        "{{ subscriber['__class__'] }}",
        "{{ subscriber.name.upper() }}",
        "{{ 'x' * 100000 }}",
        "{{ 2 ** 100000 }}",
        "{{ subscriber.tags | sort(attribute='__class__') }}",
        "{% for a in subscriber.tags %}{% for b in subscriber.tags %}{% for c in subscriber.tags %}"
        "{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_the_sandbox_refuses_escapes_and_bombs_at_render(source):
    with pytest.raises(Exception) as caught:
        sandbox_render(source, ctx=context(tags=list(range(100))))
    assert "SecurityError" in type(caught.value).__name__


def test_the_sandbox_has_no_globals_and_hides_private_keys():
    rendered = sandbox_render(
        "[{{ cycler }}][{{ range }}][{{ lipsum }}][{{ subscriber['_x'] if false }}][{{ subscriber.items }}]",
        ctx=context(items="three"),
    )
    assert rendered == "[][][][][three]"  # `items` is the attribute, not dict.items


def test_loops_are_bounded_per_message():
    compiled = compile_campaign(
        subject="Hi",
        preheader="",
        html="{% for a in subscriber.tags %}{% for b in subscriber.tags %}.{% endfor %}{% endfor %}",
        text="",
    )
    compiled.render(context=context(tags=list(range(50))))  # 2,500 iterations: fine
    with pytest.raises(RenderError):
        compiled.render(context=context(tags=list(range(int(LOOP_BUDGET**0.5) + 5))))


def test_output_is_bounded_per_message():
    block = "<p>" + "x" * 50_000 + "</p>"
    compiled = compile_campaign(
        subject="Hi", preheader="", html="{% for t in subscriber.tags %}" + block + "{% endfor %}", text="Hi"
    )
    compiled.render(context=context(tags=list(range(10))))  # 500 KB: large, allowed
    with pytest.raises(RenderError, match="longer than"):
        compiled.render(context=context(tags=list(range(100))))  # 5 MB: refused before it is built


# --- rendering ---------------------------------------------------------------------------------


def test_merge_tags_defaults_and_escaping():
    html = "<p>Hi {{ subscriber.first_name | default('there') }} from {{ subscriber.company }}</p>"
    assert "Hi Ada from ACME &lt;script&gt;" in render(html, ctx=context(company="ACME <script>")).html
    assert "Hi there from" in render(html, ctx=context(name="")).html
    assert "Hi there" in render(html, ctx=context(name="   ")).html


def test_subscriber_context_prefers_name_attributes_and_drops_empty_values():
    ctx = subscriber_context(email="a@x.test", name="Ann Marie Lee", attributes={"company": "", "plan": "pro"})
    assert ctx == {
        "email": "a@x.test",
        "name": "Ann Marie Lee",
        "first_name": "Ann",
        "last_name": "Marie Lee",
        "plan": "pro",
    }
    explicit = subscriber_context(
        email="a@x.test", name="Lee Ann", attributes={"first_name": "Ann", "last_name": "Lee"}
    )
    assert (explicit["first_name"], explicit["last_name"]) == ("Ann", "Lee")


def test_the_subject_is_plain_text_on_one_line():
    rendered = render("<p>x</p>", subject="Hi {{ subscriber.company }}\r\nBcc: evil@x.test", ctx=context(company="A&B"))
    assert rendered.subject == "Hi A&B Bcc: evil@x.test"


def test_a_merge_value_with_line_breaks_cannot_break_the_subject():
    rendered = render("<p>x</p>", subject="Hi {{ subscriber.name }}", ctx=context(name="Eve\r\nBcc: evil@x.test"))
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_css_is_inlined_once_at_compile_time_and_media_queries_kept():
    compiled = compile_campaign(
        subject="Hi",
        preheader="",
        html="<html><head><style>p { color: red } @media (max-width: 600px) { p { color: blue } }</style></head>"
        "<body><p>Hello {{ subscriber.first_name }}</p></body></html>",
        text="",
    )
    assert 'style="color: red;"' in compiled.html_source  # done in the compiled template itself
    assert "@media" in compiled.html_source
    assert '<p style="color: red;">Hello Ada</p>' in compiled.render(context=context()).html


def test_jinja_blocks_survive_inlining_inside_tables_and_attributes():
    html = (
        "<html><head><style>td { padding: 4px }</style><title>{{ campaign.name }}</title></head><body>"
        "<table>{% for tag in subscriber.tags %}<tr><td>{{ tag }}</td></tr>{% endfor %}</table>"
        '<p {% if subscriber.plan == "pro" %}class="pro"{% endif %}>Plan</p></body></html>'
    )
    rendered = render(html, ctx=context(tags=["red", "green"], plan="pro"))
    assert rendered.html.count('<td style="padding: 4px;">') == 2
    assert rendered.html.index("red") < rendered.html.index("green")
    assert "<title>Spring sale</title>" in rendered.html
    assert 'class="pro"' in rendered.html
    assert render(html, ctx=context(tags=[], plan="free")).html.count("<td") == 0


def test_literal_links_are_numbered_and_tracked():
    html = (
        '<a href="https://shop.test/a?x=1&amp;y=2">A</a> <a href="https://shop.test/b">B</a>'
        ' <a href="https://shop.test/a?x=1&amp;y=2">A again</a> <a href="mailto:hi@shop.test">mail</a>'
        ' <a href="https://shop.test/p?e={{ subscriber.email }}">personal</a>'
        ' <a href="{{ view_in_browser_url }}">web</a>'
    )
    compiled = compile_campaign(subject="Hi", preheader="", html=html, text="")
    assert compiled.links == ["https://shop.test/a?x=1&y=2", "https://shop.test/b", "https://shop.test/a?x=1&y=2"]
    tracked = compiled.render(context=context(), click_url=lambda n: f"https://t.test/c/TOKEN/{n}")
    for n in range(3):
        assert f'href="https://t.test/c/TOKEN/{n}"' in tracked.html
    assert 'href="https://shop.test/p?e=ada@example.com"' in tracked.html  # merge tag inside: left alone
    assert 'href="https://herald.test/v/VIEW/"' in tracked.html
    assert "https://t.test/c/TOKEN/0" in tracked.text  # the generated text part is tracked too
    untracked = compiled.render(context=context())
    assert 'href="https://shop.test/a?x=1&amp;y=2"' in untracked.html


def test_links_in_a_written_text_part_are_tracked():
    compiled = compile_campaign(
        subject="Hi",
        preheader="",
        html='<a href="https://shop.test/b">B</a>',
        text="Shop: https://shop.test/b\nBlog: https://blog.test/post.\nUnsubscribe: {{ unsubscribe_url }}",
    )
    assert compiled.links == ["https://shop.test/b", "https://blog.test/post"]
    text = compiled.render(context=context(), click_url=lambda n: f"https://t.test/{n}").text
    assert "Shop: https://t.test/0\nBlog: https://t.test/1." in text
    assert "Unsubscribe: https://herald.test/u/UNSUB/" in text


def test_the_text_part_is_generated_from_the_html_when_empty():
    rendered = render(
        "<html><head><style>p{}</style></head><body><h1>Spring sale</h1><p>Hi {{ subscriber.first_name }},<br>"
        "everything &amp; more.</p><ul><li>One</li><li>Two</li></ul>"
        '<a href="https://shop.test/">Shop now</a><a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'
    )
    assert rendered.text == (
        "Spring sale\n\nHi Ada,\neverything & more.\n\n- One\n- Two\n\n"
        "Shop now (https://shop.test/)Unsubscribe (https://herald.test/u/UNSUB/)\n"
    )


def test_an_unsubscribe_link_is_added_when_the_template_has_none():
    rendered = render("<html><body><p>Hello</p></body></html>", text="Hello")
    assert 'href="https://herald.test/u/UNSUB/"' in rendered.html
    assert rendered.html.index("UNSUB") < rendered.html.index("</body>")
    assert "Unsubscribe: https://herald.test/u/UNSUB/" in rendered.text
    own = render('<p><a href="{{ unsubscribe_url }}">Leave</a></p>', text="Leave: {{ unsubscribe_url }}")
    assert own.html.count("UNSUB") == 1 and own.text.count("UNSUB") == 1


def test_preheader_and_open_pixel_are_placed_in_the_body():
    rendered = render(
        "<html><body><p>Body</p></body></html>",
        preheader="Only {{ campaign.name }} & today",
        open_pixel_url="https://t.test/o/TOKEN.gif",
    )
    body = rendered.html
    assert rendered.preheader == "Only Spring sale & today"
    assert body.index("Only Spring sale &amp; today") < body.index("<p>Body</p>")
    assert '<img src="https://t.test/o/TOKEN.gif"' in body
    assert body.index("TOKEN.gif") < body.index("</body>")
    assert "TOKEN.gif" not in render("<html><body><p>Body</p></body></html>").html


def test_a_text_only_campaign_has_no_html():
    rendered = render("", text="Hi {{ subscriber.first_name }}")
    assert rendered.html == ""
    assert rendered.text.startswith("Hi Ada")


def test_render_cost_per_message(capsys):
    """Not a timed assertion: prints what rendering costs per message on this machine."""
    html = (
        "<html><head><style>p { color: #333; font-family: sans-serif } .cta { background: #0a6 }</style></head><body>"
        + "".join(
            f'<p>Paragraph {i} for {{{{ subscriber.first_name }}}}.</p><a class="cta" href="https://shop.test/{i}">Go</a>'
            for i in range(20)
        )
        + "</body></html>"
    )
    started = time.perf_counter()
    compiled = compile_campaign(subject="Hi {{ subscriber.first_name }}", preheader="Sale", html=html, text="")
    compile_ms = (time.perf_counter() - started) * 1000
    ctx = context(company="ACME")
    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        compiled.render(
            context=ctx, click_url=lambda n: f"https://t.test/c/TOKEN/{n}", open_pixel_url="https://t.test/o.gif"
        )
    per_message = (time.perf_counter() - started) / count * 1e6
    with capsys.disabled():
        print(
            f"\n[render] compile {compile_ms:.1f} ms once; render {per_message:.0f} µs per message ({len(html)} B HTML)"
        )


def test_a_template_with_thousands_of_tags_is_refused_before_parsing():
    # Parsing and compiling grow with the tags; the cap bounds what a hostile template costs.
    error = problem("<p>{{ subscriber.name }}</p>" * 2001)
    assert "more than 2,000 merge tags" in error.message
