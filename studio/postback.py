"""Post/redirect/get for forms that fail: the errors survive the redirect.

A form that is refused used to be rendered as the answer to the POST, so the
browser stayed on a POST-only URL: reloading sent the form again and opening
the address answered 405. Now a refused form keeps what was typed in the
session, the view redirects to the page the form lives on, and that page
binds the form again once, with its errors. Only what the person typed is
kept (never a secret), and it is read back once.
"""

KEY = "postback:{}"


def keep_failed_form(request, name: str, values: dict) -> None:
    values = {key: value for key, value in values.items() if key != "csrfmiddlewaretoken"}
    request.session[KEY.format(name)] = values


def failed_form(request, name: str) -> dict | None:
    """What was typed into the form `name` before its redirect, once."""
    return request.session.pop(KEY.format(name), None)
