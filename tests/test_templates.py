"""Notification templates: defaults, deployment overrides, sandboxing, start-up checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigurationError, Settings
from app.main import create_app
from app.notify.dispatcher import Dispatcher
from app.notify.templates import TemplateProblem, Templates, placeholders

SHOE = {
    "item_name": "Blue shoe",
    "item_price": "24.50",
    "item_image": "https://img.example/shoe.png",
    "item_url": "https://shop.example/shoe?a=1&b=2",
    "email": "shopper@example.com",
    "contact_id": "c0ffee00-0000-4000-8000-000000000000",
    "request_id": "0badc0de-0000-4000-8000-000000000000",
}


def render(templates: Templates, **overrides: object):
    return templates.render(placeholders(**{**SHOE, **overrides}))  # type: ignore[arg-type]


def test_default_template_shows_name_price_image_and_link_in_both_parts():
    rendered = render(Templates())

    assert rendered.subject == "Blue shoe is back in stock"
    for body in (rendered.text, rendered.html):
        assert "Blue shoe" in body
        assert "24.50" in body
        assert "https://img.example/shoe.png" in body
    assert "https://shop.example/shoe?a=1&b=2" in rendered.text
    assert '<a href="https://shop.example/shoe?a=1&amp;b=2">' in rendered.html


def test_default_template_leaves_out_a_missing_image_and_link():
    rendered = render(Templates(), item_image=None, item_url=None)

    assert "Image:" not in rendered.text and "<img" not in rendered.html
    assert "<a " not in rendered.html


def test_parameters_override_item_values_and_add_new_ones():
    templates = Templates()

    rendered = templates.render(
        placeholders(**SHOE, parameters={"item.name": "Red boot", "shop.name": "Acme"})
    )

    assert rendered.subject == "Red boot is back in stock"
    assert "Red boot" in rendered.text and "Blue shoe" not in rendered.html


def test_html_is_escaped_and_text_is_not():
    rendered = render(Templates(), item_name='<script>alert("x")</script>')

    assert '<script>alert("x")</script>' in rendered.text
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html


def test_subject_is_one_line_whatever_the_values():
    rendered = render(Templates(), item_name="Blue\r\nBcc: victim@example.com shoe")

    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_deployment_templates_replace_the_defaults_file_by_file(tmp_path: Path):
    (tmp_path / "subject.txt").write_text("Back: {{ item.name }} at {{ shop.name }}")
    (tmp_path / "body.html").write_text("<p>{{ item.name }} for {{ item.price }}</p>")

    rendered = Templates(str(tmp_path)).render(
        placeholders(**SHOE, parameters={"shop.name": "Acme & Co"})
    )

    assert rendered.subject == "Back: Blue shoe at Acme & Co"
    assert rendered.html == "<p>Blue shoe for 24.50</p>"
    # body.txt was not replaced: the default is used.
    assert "Good news: Blue shoe" in rendered.text


def test_dotted_names_win_over_dict_methods(tmp_path: Path):
    (tmp_path / "body.txt").write_text("{{ item.values }}|{{ parameters['odd-name'] }}")

    rendered = Templates(str(tmp_path)).render(
        placeholders(**SHOE, parameters={"item.values": "V", "odd-name": "O"})
    )

    assert rendered.text == "V|O"


def test_a_template_syntax_error_names_the_file_and_line(tmp_path: Path):
    (tmp_path / "body.html").write_text("<p>\n{% if item.name %}\n<p>")

    with pytest.raises(TemplateProblem, match=r"body.html line \d+"):
        Templates(str(tmp_path))


def test_the_sandbox_refuses_reaching_into_python(tmp_path: Path):
    (tmp_path / "body.txt").write_text(
        "{{ item.name.__class__.__mro__[1].__subclasses__() }}"
    )

    with pytest.raises(TemplateProblem, match=r"body\.txt"):
        Templates(str(tmp_path))


def test_a_missing_template_directory_is_reported(tmp_path: Path):
    with pytest.raises(TemplateProblem, match="MAIL_TEMPLATE_DIR"):
        Templates(str(tmp_path / "nowhere"))


async def test_a_broken_template_stops_the_server_at_start(
    settings: Settings, tmp_path: Path
):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "subject.txt").write_text("{{ item.name | no_such_filter }}")
    app = create_app(
        settings.model_copy(
            update={"mail_template_dir": str(templates), "dispatch_in_serve": True}
        )
    )

    with pytest.raises(TemplateProblem, match=r"subject\.txt"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mail_url": "gopher://mail.example"}, "MAIL_URL scheme 'gopher'"),
        ({"mail_url": "smtp://"}, "names no host"),
        ({"mail_from": "nobody"}, "MAIL_FROM"),
        ({"delivery_lease_seconds": 10.0, "mail_timeout_seconds": 20.0}, "LEASE"),
    ],
)
def test_unusable_mail_settings_are_reported_before_delivering(
    tmp_path: Path, changes: dict[str, object], message: str
):
    defaults = {"mail_url": f"file://{tmp_path}/outbox"}
    settings = Settings(_env_file=None, **{**defaults, **changes})

    with pytest.raises(ConfigurationError, match=message):
        Dispatcher(store=None, settings=settings).prepare()  # type: ignore[arg-type]
