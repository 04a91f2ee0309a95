"""Grexal's in-sandbox helpers for agents written in Python (standard library only).

    from grexal import ctx
    creds = ctx.connect("openai")          # {"mode": "secret_input", "fields": {...}}
    ctx.request_takeover(reason="Log in to LinkedIn, then press Done.", connection_id="linkedin")
"""

from . import ctx
from .ctx import CtxError

__all__ = ["ctx", "CtxError"]
