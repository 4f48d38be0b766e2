"""The notification email's templates: defaults, deployment overrides and rendering.

Templates are Jinja2, sandboxed, with HTML autoescaped. A deployment's `MAIL_TEMPLATE_DIR`
may hold any of `subject.txt`, `body.txt` and `body.html`; missing ones fall back to the
defaults shipped in `app/notify/templates/`. Every template is compiled and test-rendered
when the dispatcher starts, so a broken one stops the start instead of the first email.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BytecodeCache,
    ChainableUndefined,
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    Template,
    TemplateError,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.bccache import Bucket
from jinja2.sandbox import SandboxedEnvironment

from app.config import ConfigurationError

SUBJECT = "subject.txt"
TEXT_BODY = "body.txt"
HTML_BODY = "body.html"
TEMPLATE_NAMES = (SUBJECT, TEXT_BODY, HTML_BODY)
# The confirmation email's (double opt-in), overridable the same way.
CONFIRMATION_NAMES = (
    "confirmation_subject.txt",
    "confirmation_body.txt",
    "confirmation_body.html",
)

# What the start-up check renders every template with.
_SAMPLE = {
    "item.name": "Sample item <&>",
    "item.price": "24.50",
    "item.image.url": "https://example.com/item.png?a=1&b=2",
    "itemUrl": "https://example.com/item?a=1&b=2",
    "unsubscribeUrl": "https://example.com/unsubscribe/token?a=1&b=2",
}
_CONFIRMATION_SAMPLE = {
    "confirmUrl": "https://example.com/confirm/token?a=1&b=2",
    "items": ["Sample item <&>", "Another item"],
    "expiresInHours": 48,
    "email": "shopper@example.com",
}


class TemplateProblem(ConfigurationError):
    """A notification template cannot be loaded or rendered."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class _CompiledTemplates(BytecodeCache):
    """Compiled templates, kept in memory for the process by Jinja's own key (the
    template's name and file) and checked against its source's checksum: an app started
    again in the same process (tests start hundreds) does not compile them again."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)  # ignored if the source changed

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


class _Environment(SandboxedEnvironment):
    """Dict keys win over dict methods, so `{{ item.values }}` is a placeholder."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict):
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _set_placeholder(context: dict[str, Any], name: str, value: Any) -> None:
    """Set the dotted placeholder `name` (e.g. `item.image.url`) in the nested context."""
    *parents, leaf = name.split(".")
    node = context
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def placeholders(
    *,
    item_name: str,
    item_price: str,
    item_image: str | None,
    item_url: str | None,
    email: str,
    contact_id: str,
    request_id: str,
    parameters: Mapping[str, Any] | None = None,
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    """The flat placeholder values of one email; `parameters` override same-named ones,
    except `unsubscribeUrl`, which always leads to the recipient's own unsubscribe page."""
    values: dict[str, Any] = {
        "item.name": item_name,
        "item.price": item_price,
        "item.image.url": item_image,
        "itemUrl": item_url,
        "email": email,
        "contactId": contact_id,
        "requestId": request_id,
    }
    values.update(parameters or {})
    values["unsubscribeUrl"] = unsubscribe_url
    return values


def template_context(values: Mapping[str, Any]) -> dict[str, Any]:
    """Nest flat placeholder names into the variables templates see.

    `parameters` also holds every value by its flat name, for names that are not valid
    Jinja2 paths (`{{ parameters["shop-name"] }}`).
    """
    context: dict[str, Any] = {}
    for name, value in values.items():
        _set_placeholder(context, name, value)
    context["parameters"] = dict(values)
    return context


class Templates:
    """The three templates of an email (subject, text, HTML), loaded and checked: by
    default the notification's (`TEMPLATE_NAMES`)."""

    def __init__(
        self,
        template_dir: str | None = None,
        names: tuple[str, str, str] = TEMPLATE_NAMES,
        sample: Mapping[str, Any] = _SAMPLE,
    ) -> None:
        self.names = names
        loaders: list[Any] = []
        if template_dir:
            directory = Path(template_dir)
            if not directory.is_dir():
                raise TemplateProblem(
                    f"MAIL_TEMPLATE_DIR {template_dir!r} is not a directory"
                )
            loaders.append(FileSystemLoader(directory))
        loaders.append(PackageLoader("app.notify", "templates"))
        self.environment = _Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(["html", "htm"], default_for_string=False),
            undefined=ChainableUndefined,
            keep_trailing_newline=True,
            bytecode_cache=_COMPILED,
        )
        self._templates = {name: self._load(name) for name in names}
        # Compiling catches syntax errors; rendering a sample catches the rest
        # (unknown filters, sandbox violations, type errors).
        try:
            self.render(sample)
        except TemplateProblem:
            raise
        except Exception as error:
            raise TemplateProblem(f"mail templates fail to render: {error}") from error

    def _load(self, name: str) -> Template:
        try:
            return self.environment.get_template(name)
        except TemplateSyntaxError as error:
            raise TemplateProblem(
                f"mail template {error.filename or name} line {error.lineno}: {error.message}"
            ) from error
        except TemplateError as error:
            raise TemplateProblem(f"mail template {name}: {error}") from error

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self._templates[name].render(context)
        except TemplateError as error:
            raise TemplateProblem(f"mail template {name}: {error}") from error

    def render(self, values: Mapping[str, Any]) -> RenderedEmail:
        """Render subject and bodies from flat placeholder values (see `placeholders`)."""
        context = template_context(values)
        subject_name, text_name, html_name = self.names
        # A subject is one header line: fold whatever the template made into one.
        subject = " ".join(self._render(subject_name, context).split())
        return RenderedEmail(
            subject=subject,
            text=self._render(text_name, context),
            html=self._render(html_name, context),
        )


def confirmation_templates(template_dir: str | None = None) -> Templates:
    """The confirmation email's templates (placeholders: `confirmUrl`, `items`, the
    names of the items waiting, `expiresInHours` and `email`)."""
    return Templates(template_dir, CONFIRMATION_NAMES, _CONFIRMATION_SAMPLE)
