"""NDJSON for the supervisor, on the C accelerator alone.

The `json` package imports `re` and `enum`, which cost ~13 ms of every sandbox start; the
protocol's lines need only what `_json` already does in C.
"""
import _json


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        raise ValueError(f'{name} is not JSON')


_scan = _json.make_scanner(_Context())
_WHITESPACE = ' \t\n\r'


def loads(text):
    """The one JSON value of `text` (surrounding whitespace allowed); ValueError otherwise."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError('not JSON') from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError('extra data after the JSON value')
    return value


def dumps(value):
    """Compact JSON of dicts, lists, strings, ints, bools and None: what the requests hold."""
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, dict):
        return '{' + ','.join(f'{dumps(str(k))}:{dumps(v)}' for k, v in value.items()) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(dumps(v) for v in value) + ']'
    raise TypeError(f'cannot encode {type(value).__name__} as JSON')
