"""Email templates: checked when saved, compiled once per campaign, rendered per message.

Templates are Jinja2 written by marketers, so they run in a sandbox that can read only the
context it is handed (the subscriber's fields, the campaign's name and the unsubscribe,
preferences and view-in-browser links): no globals, no function calls, no private attributes,
no imports, bounded loops and arithmetic. `check_template` finds the problems a marketer can
fix when the template is saved, with the line; `compile_campaign` does everything that does
not depend on the subscriber once (parsing, CSS inlining, finding and numbering the links,
deriving the text part), so that `CompiledCampaign.render` is a few dictionary lookups and
string joins on the send path.
"""

import html as html_lib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import css_inline
from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes, pass_context
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from campaigns.lib.htmltext import html_to_text


class TemplateProblem(ValueError):
    """A template that cannot be used, with a message for the marketer (and the line, if known).

    `field` names the part at fault ("subject", "preheader", "html", "text") so a form can show
    the message next to it.
    """

    def __init__(self, message: str, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (_FIELD_LABELS.get(self.field or "", ""), f"line {self.line}" if self.line else "") if part
        )
        return f"{where}: {self.message}" if where else self.message


class RenderError(TemplateProblem):
    """A compiled template failed for one subscriber (a sandbox refusal, a loop over its budget...)."""


MERGE_FIELDS: dict[str, str] = {
    "subscriber.email": "The subscriber's email address",
    "subscriber.name": "The subscriber's full name",
    "subscriber.first_name": "First name (the first_name attribute, or the first word of the name)",
    "subscriber.last_name": "Last name (the last_name attribute, or the rest of the name)",
    "subscriber.<attribute>": "Any custom attribute of the subscriber, e.g. subscriber.company",
    "campaign.name": "The campaign's name",
    "unsubscribe_url": "One-click unsubscribe link (added at the bottom when the template has none)",
    "preferences_url": "Link to the subscriber's list preferences",
    "view_in_browser_url": "Link to this email on the web",
}

SUBSCRIBER_FIELDS = frozenset({"email", "name", "first_name", "last_name"})
CAMPAIGN_FIELDS = frozenset({"name"})
TOP_LEVEL_NAMES = frozenset({"subscriber", "campaign", "unsubscribe_url", "preferences_url", "view_in_browser_url"})

# Filters that only transform values. Left out: those that reach attributes by a name given in the
# template (attr, map, select/reject*, groupby), format strings (format), and those that would let
# subscriber data through unescaped (safe) or dump internals (pprint, tojson, xmlattr).
ALLOWED_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "count", "d", "default", "e", "escape", "filesizeformat", "first",
        "float", "forceescape", "indent", "int", "join", "last", "length", "list", "lower", "max", "min",
        "replace", "reverse", "round", "slice", "sort", "string", "striptags", "sum", "title", "trim",
        "truncate", "unique", "upper", "urlencode", "wordcount", "wordwrap",
    }
)  # fmt: skip
ALLOWED_TESTS = frozenset(
    {
        "boolean", "defined", "divisibleby", "eq", "equalto", "even", "false", "float", "ge", "greaterthan",
        "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number",
        "odd", "sameas", "sequence", "string", "true", "undefined", "upper",
    }
)  # fmt: skip

MAX_TEMPLATE_CHARS = 1_000_000  # Gmail clips a message past ~102 KB; a megabyte is a mistake.
MAX_SUBJECT_CHARS = 1_000
# Real templates hold tens of tags, rarely hundreds; the cap keeps checking and compiling a
# hostile one (the API accepts content too) to well under a second.
MAX_TEMPLATE_TAGS = 2_000
_TAG_START = re.compile(r"\{[{%#]")
MAX_LOOP_NESTING = 2
# Loop iterations one message may run across all its parts: enough for any real template (a list
# of products), small enough that a loop over a huge attribute cannot stall a send worker.
LOOP_BUDGET = 10_000
MAX_REPEAT = 10_000  # longest string or list that `*` may build
MAX_OUTPUT_CHARS = 2_000_000  # per part of one message; a real email is a hundred times smaller
MAX_EXPONENT = 64

_MISSING = object()
_LOOP_FIELDS = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0", "previtem", "nextitem"}
)
_FIELD_LABELS = {"subject": "Subject", "preheader": "Preheader", "html": "HTML body", "text": "Text body"}
_STATEMENTS_REFUSED = {
    nodes.Extends: "Templates cannot extend other templates.",
    nodes.Include: "Templates cannot include other templates.",
    nodes.Import: "Templates cannot import other templates.",
    nodes.FromImport: "Templates cannot import other templates.",
    nodes.Macro: "Macros are not available in email templates.",
    nodes.CallBlock: "Call blocks are not available in email templates.",
    nodes.Block: "Blocks are not available in email templates.",
    nodes.EvalContextModifier: "Autoescaping cannot be turned off in email templates.",
    nodes.ScopedEvalContextModifier: "Autoescaping cannot be turned off in email templates.",
}


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed to reading the plain data a template is given.

    Values are dicts, lists and strings: attribute access reads dict keys only (so an attribute
    named "items" is the attribute, not dict.items), nothing can be called, and `*` / `**` are
    bounded so a template cannot exhaust memory or CPU.
    """

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, *, autoescape: bool):
        super().__init__(autoescape=autoescape, undefined=ChainableUndefined, keep_trailing_newline=True)
        self.globals.clear()  # no range, cycler, joiner, namespace, lipsum, dict
        self.filters = {name: self.filters[name] for name in ALLOWED_FILTERS}
        self.filters["herald_loop"] = _bounded_loop
        self.tests = {name: self.tests[name] for name in ALLOWED_TESTS}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not attr.startswith("_") and super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise SecurityError(f"access to {attribute!r} is not allowed")
        if type(obj) is dict:  # the common case on the send path: subscriber.first_name
            value = obj.get(attribute, _MISSING)
            return self.undefined(obj=obj, name=attribute) if value is _MISSING else value
        if isinstance(obj, Mapping):
            return self.getitem(obj, attribute)
        if isinstance(obj, LoopContext) and attribute in _LOOP_FIELDS:
            return getattr(obj, attribute)
        return self.undefined(obj=obj, name=attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument.startswith("_"):
            raise SecurityError(f"access to {argument!r} is not allowed")
        if isinstance(obj, Mapping | Sequence) and not isinstance(obj, bytes):
            try:
                return obj[argument]
            except (KeyError, IndexError, TypeError):
                pass
        return self.undefined(obj=obj, name=argument)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's signature)
        raise SecurityError("calling functions is not allowed in email templates")

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            if not isinstance(right, int | float) or abs(right) > MAX_EXPONENT:
                raise SecurityError("the exponent is too large")
            return left**right
        for sized, times in ((left, right), (right, left)):
            if isinstance(sized, str | list | tuple) and isinstance(times, int) and len(sized) * times > MAX_REPEAT:
                raise SecurityError("the repeated value would be too long")
        return left * right


@pass_context
def _bounded_loop(context, iterable: Iterable) -> Iterable:
    """Every `{% for %}` iterates through this filter, which spends the message's loop budget."""
    budget = context.get("herald_budget")
    if budget is None:  # rendered outside CompiledCampaign.render: one budget per Jinja context
        budget = context.__dict__.setdefault("herald_budget", [LOOP_BUDGET])
    for item in iterable if iterable is not None else ():
        budget[0] -= 1
        if budget[0] < 0:
            raise SecurityError(f"the template's loops ran more than {LOOP_BUDGET} times")
        yield item


_HTML_ENV = _Sandbox(autoescape=True)
_TEXT_ENV = _Sandbox(autoescape=False)


# --- checking ------------------------------------------------------------------------------------


def find_template_problems(
    *, subject: str, preheader: str, html: str, text: str, attribute_keys: Iterable[str] | None = frozenset()
) -> list[TemplateProblem]:
    """The first problem of each part, in form order; empty when the template can be saved.

    `attribute_keys` are the workspace's custom subscriber attributes; None allows any (used when
    compiling, where unknown attributes simply render empty).
    """
    problems = []
    if not subject.strip():
        problems.append(TemplateProblem("The subject is empty.", field="subject"))
    elif len(subject) > MAX_SUBJECT_CHARS:
        problems.append(TemplateProblem(f"The subject is longer than {MAX_SUBJECT_CHARS} characters.", field="subject"))
    if not html.strip() and not text.strip():
        problems.append(TemplateProblem("Write an HTML body, a text body, or both.", field="html"))
    keys = None if attribute_keys is None else frozenset(attribute_keys)
    for field, source, env in (
        ("subject", subject, _TEXT_ENV),
        ("preheader", preheader, _TEXT_ENV),
        ("html", html, _HTML_ENV),
        ("text", text, _TEXT_ENV),
    ):
        if any(problem.field == field for problem in problems):
            continue
        try:
            _check_source(source, env=env, attribute_keys=keys)
        except TemplateProblem as problem:
            problem.field = field
            problems.append(problem)
    return problems


def check_template(
    *, subject: str, preheader: str, html: str, text: str, attribute_keys: Iterable[str] = frozenset()
) -> None:
    """Raise a TemplateProblem (field, line, message) for the first thing wrong with a template."""
    problems = find_template_problems(
        subject=subject, preheader=preheader, html=html, text=text, attribute_keys=attribute_keys
    )
    if problems:
        raise problems[0]


def _parse(source: str, *, env: _Sandbox) -> nodes.Template:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"The template is longer than {MAX_TEMPLATE_CHARS:,} characters.")
    if len(_TAG_START.findall(source)) > MAX_TEMPLATE_TAGS:
        raise TemplateProblem(f"The template has more than {MAX_TEMPLATE_TAGS:,} merge tags and blocks.")
    try:
        return env.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(_syntax_message(error), line=error.lineno) from None


def _syntax_message(error: TemplateSyntaxError) -> str:
    message = error.message or "Syntax error."
    if "Encountered unknown tag" in message:
        message = message.split(". Jinja was looking", 1)[0] + "."
    return message[0].upper() + message[1:]


def _check_source(source: str, *, env: _Sandbox, attribute_keys: frozenset[str] | None) -> None:
    ast = _parse(source, env=env)
    for node in ast.find_all(nodes.Node):
        line = getattr(node, "lineno", None)
        for node_type, message in _STATEMENTS_REFUSED.items():
            if isinstance(node, node_type):
                raise TemplateProblem(message, line=line)
        if isinstance(node, nodes.Call):
            raise TemplateProblem("Functions cannot be called in email templates; use a filter, e.g. |upper.", line)
        if isinstance(node, nodes.Pow):
            raise TemplateProblem("The ** operator is not available in email templates.", line)
        if isinstance(node, nodes.Name) and node.name == "self":
            raise TemplateProblem("'self' is not available in email templates.", line)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            key = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
            if isinstance(key, str) and key.startswith("_"):
                raise TemplateProblem(f"Names starting with an underscore ({key}) are not available.", line)
            _check_field(node, key, attribute_keys, line)
        if isinstance(node, nodes.Keyword) and isinstance(node.value, nodes.Const):
            value = node.value.value
            if isinstance(value, str) and any(part.startswith("_") for part in value.split(".")):
                raise TemplateProblem(f"Names starting with an underscore ({value}) are not available.", line)
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            raise TemplateProblem(f"Unknown filter '{node.name}'.", line)
        if isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
            raise TemplateProblem(f"Unknown test '{node.name}'.", line)
    _check_loop_nesting(ast)
    for name in sorted(find_undeclared_variables(ast) - TOP_LEVEL_NAMES):
        line = next((n.lineno for n in ast.find_all(nodes.Name) if n.name == name), None)
        raise TemplateProblem(f"Unknown field '{name}'. {_available_fields(attribute_keys)}", line)


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def _check_field(node: nodes.Getattr | nodes.Getitem, key: Any, attribute_keys: frozenset[str] | None, line) -> None:
    """`subscriber.x` must be a known field or attribute, `campaign.x` a campaign field."""
    owner = node.node
    if not isinstance(owner, nodes.Name) or not isinstance(key, str):
        return
    if owner.name == "subscriber" and attribute_keys is not None:
        if key not in SUBSCRIBER_FIELDS and key not in attribute_keys:
            raise TemplateProblem(f"Unknown field 'subscriber.{key}'. {_available_fields(attribute_keys)}", line)
    elif owner.name == "campaign" and key not in CAMPAIGN_FIELDS:
        raise TemplateProblem(f"Unknown field 'campaign.{key}'. Available: campaign.name.", line)


def _available_fields(attribute_keys: frozenset[str] | None) -> str:
    subscriber = [f"subscriber.{key}" for key in sorted(SUBSCRIBER_FIELDS | (attribute_keys or frozenset()))]
    names = [*subscriber, "campaign.name", "unsubscribe_url", "preferences_url", "view_in_browser_url"]
    return "Available: " + ", ".join(names) + "."


def _check_loop_nesting(ast: nodes.Template) -> None:
    """One walk of the tree (templates may be large), refusing loops nested too deep."""
    pending: list[tuple[nodes.Node, int]] = [(ast, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, nodes.For):
            depth += 1
            if depth > MAX_LOOP_NESTING:
                raise TemplateProblem(f"Loops can be nested at most {MAX_LOOP_NESTING} deep.", node.lineno)
        pending.extend((child, depth) for child in node.iter_child_nodes())


# --- compiling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    preheader: str
    html: str
    text: str


class _Links(Sequence):
    """`herald_links[i]` in a compiled template: the tracked URL of link i, or the link itself."""

    __slots__ = ("_click_url", "_links")

    def __init__(self, links: list[str], click_url: Callable[[int], str] | None):
        self._links = links
        self._click_url = click_url

    def __len__(self) -> int:
        return len(self._links)

    def __getitem__(self, position):
        return self._click_url(position) if self._click_url else self._links[position]


class CompiledCampaign:
    """A campaign's templates, parsed, inlined and link-numbered: ready to render per subscriber."""

    def __init__(self, *, links: list[str], subject, preheader, html, text, html_source: str, text_source: str):
        self.links = links
        self.html_source = html_source  # the compiled Jinja, for inspection and tests
        self.text_source = text_source
        self._subject = subject
        self._preheader = preheader
        self._html = html
        self._text = text

    def render(
        self, *, context: dict, click_url: Callable[[int], str] | None = None, open_pixel_url: str | None = None
    ) -> RenderedMessage:
        """The message for one subscriber. Raises RenderError if the sandbox refuses something."""
        values = dict(context)
        values["herald_links"] = _Links(self.links, click_url)
        values["herald_budget"] = [LOOP_BUDGET]
        try:
            subject = " ".join(_bounded(self._subject, values).split())
            preheader = " ".join(_bounded(self._preheader, values).split())
            values["herald_preheader"] = preheader
            values["herald_open_pixel"] = open_pixel_url or ""
            return RenderedMessage(
                subject=subject,
                preheader=preheader,
                html=_bounded(self._html, values),
                text=_bounded(self._text, values),
            )
        except TemplateProblem:
            raise
        except Exception as error:  # anything a template can raise: refusals, bad arithmetic, filters
            raise RenderError(f"The template could not be rendered: {error}") from error


def subscriber_context(*, email: str, name: str, attributes: dict) -> dict:
    """The `subscriber` value a template sees.

    Custom attributes sit beside the built-in fields (`subscriber.company`); empty values are
    left out so `| default("there")` applies to an empty first name as well as a missing one.
    """
    words = (name or "").split()
    derived = {"first_name": words[0] if words else "", "last_name": " ".join(words[1:])}
    values: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if isinstance(key, str) and value not in (None, ""):
            values[key] = value
    values["email"] = email
    values["name"] = name or ""
    for key, value in derived.items():
        if not values.get(key):
            values[key] = value
    return {key: value for key, value in values.items() if value not in (None, "")}


def compile_campaign(*, subject: str, preheader: str, html: str, text: str) -> CompiledCampaign:
    """Compile once per campaign per worker; raises TemplateProblem if the content is unusable."""
    problems = find_template_problems(subject=subject, preheader=preheader, html=html, text=text, attribute_keys=None)
    if problems:
        raise problems[0]
    links: list[str] = []
    html_source = _compile_html(html, links) if html.strip() else ""
    if text.strip():
        text_source = _track_text_links(_ensure_text_unsubscribe(text), links)
    else:
        text_source = _track_text_links(_ensure_text_unsubscribe(_text_from_html(html)), links)
    return CompiledCampaign(
        links=links,
        subject=_from_source(subject, _TEXT_ENV),
        preheader=_from_source(preheader, _TEXT_ENV),
        html=_from_source(html_source, _HTML_ENV),
        text=_from_source(text_source, _TEXT_ENV),
        html_source=html_source,
        text_source=text_source,
    )


def _bounded(template, values: dict) -> str:
    """Render, refusing output past MAX_OUTPUT_CHARS (a loop around a large block could build gigabytes)."""
    if isinstance(template, _Constant):
        return template.text
    parts, size = [], 0
    for chunk in template.generate(values):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise RenderError(f"The message would be longer than {MAX_OUTPUT_CHARS:,} characters.")
        parts.append(chunk)
    return "".join(parts)


class _Constant:
    """A part without any Jinja (often the preheader or the subject): no template to run per message."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def render(self, values: dict) -> str:
        return self.text


def _from_source(source: str, env: _Sandbox):
    """A Jinja template whose every `{% for %}` draws on the message's loop budget."""
    if not any(marker in source for marker in ("{{", "{%", "{#")):
        return _Constant(source)
    ast = env.parse(source)
    if any(name.name == "self" for name in ast.find_all(nodes.Name)):
        # `self` would hand the template a reference to itself; nothing legitimate needs it.
        raise SecurityError("'self' is not available in email templates")
    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, "herald_loop", [], [], None, None, lineno=loop.lineno)
    return env.from_string(ast)


# Jinja constructs are swapped for inert placeholders while the HTML goes through the CSS inliner
# (an HTML parser that would escape, move or drop them): an HTML comment where text may appear (a
# comment stays put even between <table> and <tr>), a bare word inside a tag or a raw-text element.
class _Placeholders:
    def __init__(self, source: str):
        self.nonce = secrets.token_hex(4)
        self.constructs: list[str] = []
        self.pattern = re.compile(rf"(?:<!--|&lt;!--)?hj{self.nonce}n(\d+)x(?:-->|--&gt;|=\"\")?")
        self.protected = self._protect(source)

    def _token(self, construct: str) -> str:
        self.constructs.append(construct)
        return f"hj{self.nonce}n{len(self.constructs) - 1}x"

    def _protect(self, source: str) -> str:
        out: list[str] = []
        scanner = _TagScanner()
        construct: list[str] = []
        in_raw = False
        for _, kind, value in _HTML_ENV.lex(source):
            if kind == "data" and not in_raw:
                out.append(value)
                scanner.feed(value)
                continue
            construct.append(value)
            if kind == "raw_begin":
                in_raw = True
            elif kind == "raw_end":
                in_raw = False
            if not in_raw and kind in ("variable_end", "block_end", "comment_end", "raw_end"):
                token = self._token("".join(construct))
                construct = []
                out.append(token if scanner.in_tag or scanner.raw_text else f"<!--{token}-->")
        return "".join(out)

    def restore(self, text: str) -> tuple[str, int]:
        count = 0

        def put_back(match: re.Match) -> str:
            nonlocal count
            count += 1
            return self.constructs[int(match.group(1))]

        return self.pattern.sub(put_back, text), count

    def bare(self, text: str) -> str:
        """The protected text with comment placeholders turned into bare words (for the text part)."""
        return re.sub(rf"<!--(hj{self.nonce}n\d+x)-->", r"\1", text)


class _TagScanner:
    """Tracks, across chunks of HTML, whether the next character is inside a tag, a comment or raw text."""

    _RAW = frozenset({"style", "script", "title", "textarea"})

    def __init__(self):
        self.state = "text"  # text, tag, comment, raw
        self.quote = ""
        self.name = ""
        self.naming = False
        self.raw_name = ""
        self.recent = ""  # last characters seen, to spot "-->" and "</style"

    @property
    def in_tag(self) -> bool:
        return self.state in ("tag", "comment")

    @property
    def raw_text(self) -> bool:
        return self.state == "raw"

    def feed(self, data: str) -> None:
        for char in data:
            self.recent = (self.recent + char)[-12:]
            if self.state == "text":
                if char == "<":
                    self.state, self.name, self.naming, self.quote = "tag", "", True, ""
            elif self.state == "comment":
                if self.recent.endswith("-->"):
                    self.state = "text"
            elif self.state == "raw":
                if self.recent.lower().endswith("</" + self.raw_name):
                    self.state, self.name, self.naming, self.quote = "tag", "/", False, ""
            elif self.quote:
                if char == self.quote:
                    self.quote = ""
            elif char == ">":
                name = self.name.lower()
                self.state = "raw" if name in self._RAW else "text"
                self.raw_name = name
            elif self.naming:
                if char.isspace() or (char == "/" and self.name):
                    self.naming = False
                else:
                    self.name += char
                    if self.name == "!--":
                        self.state = "comment"
                        self.recent = ""
            elif char in "\"'":
                self.quote = char


_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_TEXT_URL = re.compile(r"""https?://[^\s<>"'()\[\]]+[^\s<>"'()\[\].,;:!?]""", re.IGNORECASE)

_PREHEADER = (
    '{% if herald_preheader %}<div style="display:none;font-size:1px;line-height:1px;max-height:0;'
    'max-width:0;opacity:0;overflow:hidden;mso-hide:all">{{ herald_preheader }}</div>{% endif %}'
)
_OPEN_PIXEL = (
    '{% if herald_open_pixel %}<img src="{{ herald_open_pixel }}" width="1" height="1" alt="" '
    'style="display:block;border:0;width:1px;height:1px">{% endif %}'
)
_HTML_FOOTER = (
    '<p style="font-size:12px;color:#666666;text-align:center">'
    '<a href="{{ unsubscribe_url }}" style="color:#666666">Unsubscribe</a></p>'
)


def _compile_html(html: str, links: list[str]) -> str:
    placeholders = _Placeholders(html)
    inlined = placeholders.protected
    if re.search(r"<style\b|<link\b", inlined, re.IGNORECASE):
        try:
            inlined = _INLINER.inline(inlined)
        except Exception:  # an unparsable stylesheet: send the HTML as written rather than fail
            inlined = placeholders.protected
        restored, count = placeholders.restore(inlined)
        if count != len(placeholders.constructs):
            # The inliner dropped a placeholder (a Jinja tag inside <style>): keep the HTML as written.
            inlined = placeholders.protected
    inlined = _number_links(inlined, placeholders, links)
    if not _mentions_unsubscribe(placeholders.constructs):
        inlined = _insert_before_body_end(inlined, _HTML_FOOTER)
    inlined = _insert_before_body_end(inlined, _OPEN_PIXEL)
    match = _BODY_OPEN.search(inlined)
    inlined = inlined[: match.end()] + _PREHEADER + inlined[match.end() :] if match else _PREHEADER + inlined
    restored, _ = placeholders.restore(inlined)
    return restored


def _insert_before_body_end(html: str, snippet: str) -> str:
    matches = list(_BODY_CLOSE.finditer(html))
    if not matches:
        return html + snippet
    at = matches[-1].start()
    return html[:at] + snippet + html[at:]


def _number_links(html: str, placeholders: _Placeholders, links: list[str]) -> str:
    """Number every literal http(s) link of the HTML and point it at `herald_links[n]`."""

    def anchor(match: re.Match) -> str:
        tag = match.group(0)
        href = _HREF.search(tag)
        if not href:
            return tag
        raw = next(value for value in href.groups()[1:] if value is not None)
        url = html_lib.unescape(raw).strip()
        if not re.match(r"https?://", url, re.IGNORECASE) or placeholders.pattern.search(url):
            return tag  # a merge tag in the link: it can't be a fixed, trackable URL
        links.append(url)
        replacement = f'{href.group(1)}"{{{{ herald_links[{len(links) - 1}] }}}}"'
        return tag[: href.start()] + replacement + tag[href.end() :]

    return _ANCHOR.sub(anchor, html)


def _text_from_html(html: str) -> str:
    if not html.strip():
        return ""
    placeholders = _Placeholders(html)
    text = html_to_text(placeholders.bare(placeholders.protected))
    # Entities such as &#123;&#123; decode to braces that Jinja would read as a tag.
    text = re.sub(r"\{(?=[{%#])", '{{ "{" }}', text)
    restored, count = placeholders.restore(text)
    try:
        _TEXT_ENV.parse(restored)
    except TemplateSyntaxError:
        # Some block tag sat inside an HTML attribute and was lost: keep only the output tags.
        restored = re.sub(r"\{%.*?%\}", "", restored, flags=re.DOTALL)
    return restored


def _mentions_unsubscribe(constructs: list[str]) -> bool:
    """Whether some tag of the template uses the unsubscribe link (then no footer is added)."""
    return any(_UNSUBSCRIBE_NAME.search(construct) for construct in constructs if not construct.startswith("{#"))


_UNSUBSCRIBE_NAME = re.compile(r"\bunsubscribe_url\b")


def _ensure_text_unsubscribe(text: str) -> str:
    if _mentions_unsubscribe(_Placeholders(text).constructs):
        return text
    return text.rstrip("\n") + "\n\n--\nUnsubscribe: {{ unsubscribe_url }}\n"


def _track_text_links(text: str, links: list[str]) -> str:
    """Literal URLs in the text part go through the same numbered links (an HTML link's number if seen)."""
    placeholders = _Placeholders(text)
    protected = placeholders.bare(placeholders.protected)

    def link(match: re.Match) -> str:
        url = match.group(0)
        if placeholders.pattern.search(url):
            return url
        position = links.index(url) if url in links else None
        if position is None:
            links.append(url)
            position = len(links) - 1
        return f"{{{{ herald_links[{position}] }}}}"

    restored, _ = placeholders.restore(_TEXT_URL.sub(link, protected))
    return restored
