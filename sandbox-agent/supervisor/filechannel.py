"""The file channel, sandbox side: writes the runner's tar under /tmp/grexal before the agent starts.

Every entry must be a plain file named exactly `<connection_id>/<name>`; each connection's directory
is created 0700 and must not exist yet, each file is created with O_EXCL|O_NOFOLLOW and mode 0400,
so a link or file planted at a target is refused, never followed or overwritten. On any refusal,
what was written is removed. Imported only when the bootstrap carries files.

The tar is read by a small strict ustar reader rather than the tarfile module: the runner writes
these archives itself (tar-stream, ustar), anything else is refused, and importing tarfile cost
26–55 ms of every start that carries files.
"""
import os
import re
import stat

# The same patterns as CONNECTION_ID_PATTERN and FILE_NAME_PATTERN in sandbox-agent/wire.ts.
CONNECTION_ID = re.compile(r'[a-z0-9][a-z0-9_-]{0,63}', re.ASCII)
FILE_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9._-]{0,127}', re.ASCII)

CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

BLOCK = 512
REGULAR_TYPES = (b'0', b'\0')
TYPE_NAMES = {
    b'2': 'symlink',
    b'1': 'link',
    b'5': 'directory',
    b'6': 'fifo',
    b'3': 'character-device',
    b'4': 'block-device',
    b'7': 'contiguous-file',
}


class _Member:
    __slots__ = ('name', 'type', 'size', 'offset')

    def __init__(self, name, type_, size, offset):
        self.name, self.type, self.size, self.offset = name, type_, size, offset


class _Unreadable(Exception):
    pass


def _octal(field):
    text = field.rstrip(b'\0 ').lstrip(b' ')
    if not text or any(c not in b'01234567' for c in text):
        raise _Unreadable(f'bad number field {field!r}')
    return int(text, 8)


def _members(data):
    """The archive's entries, each header checked (checksum, sizes) before it is trusted."""
    offset = 0
    while True:
        header = data[offset : offset + BLOCK]
        if len(header) < BLOCK:
            raise _Unreadable('the archive ends inside a header')
        if header == bytes(BLOCK):
            return
        checksum = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if _octal(header[148:156]) != checksum:
            raise _Unreadable(f'bad header checksum at byte {offset}')
        name = header[:100].split(b'\0', 1)[0]
        prefix = header[345:500].split(b'\0', 1)[0] if header[257:262] == b'ustar' else b''
        full = (prefix + b'/' + name if prefix else name).decode('utf-8', 'replace')
        size = _octal(header[124:136])
        start = offset + BLOCK
        if start + size > len(data):
            raise _Unreadable(f'{full} is truncated')
        yield _Member(full, header[156:157], size, start)
        offset = start + (size + BLOCK - 1) // BLOCK * BLOCK


class FileChannelError(Exception):
    def __init__(self, entry, why):
        super().__init__(f'Refusing file-channel entry {_quote(entry)}: {why}.')
        self.entry = entry


def _quote(text):
    # The same quoting as JSON.stringify, without importing json.
    import _json

    return _json.encode_basestring(text)


def _parse_entry(member):
    """`(connection_id, name)` of a valid entry; raises naming the entry otherwise."""
    entry = member.name
    if member.type not in REGULAR_TYPES:
        kind = TYPE_NAMES.get(member.type, 'unknown')
        raise FileChannelError(entry, f'it is a {kind} entry, not a plain file')
    parts = entry.split('/')
    if len(parts) != 2:
        raise FileChannelError(entry, 'the name must be exactly <connection_id>/<name>')
    connection_id, name = parts
    if not CONNECTION_ID.fullmatch(connection_id):
        raise FileChannelError(entry, f'{_quote(connection_id)} is not a connection id')
    if not FILE_NAME.fullmatch(name):
        raise FileChannelError(
            entry, f'{_quote(name)} is not a plain file name (no "..", "/", leading dot or NUL)'
        )
    return connection_id, name


class _Writer:
    def __init__(self, root):
        self.root = root
        self.dirs = []
        self.files = []

    def _dir_for(self, entry, connection_id):
        path = os.path.join(self.root, connection_id)
        if path in self.dirs:
            return path
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise FileChannelError(entry, f'{path} already exists') from None
        except OSError as error:
            raise FileChannelError(entry, f'cannot create {path} ({error.strerror})') from None
        self.dirs.append(path)
        return path

    def write(self, entry, connection_id, name, content):
        path = os.path.join(self._dir_for(entry, connection_id), name)
        try:
            fd = os.open(path, CREATE_FLAGS, 0o400)
        except (FileExistsError, OSError) as error:
            exists = isinstance(error, FileExistsError) or error.errno == 40  # ELOOP
            why = 'something already exists at the target' if exists else f'cannot create it ({error.strerror})'
            raise FileChannelError(entry, why) from None
        self.files.append(path)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def undo(self):
        """Removes what this call created, so a refused tar leaves nothing half-written."""
        for path in self.files:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.dirs:
            import shutil

            for path in self.dirs:
                shutil.rmtree(path, ignore_errors=True)


def write_files_from_tar(data, root):
    """Writes every entry of the tar `data` under `root`; returns once every file is written whole."""
    try:
        root_is_dir = stat.S_ISDIR(os.lstat(root).st_mode)
    except OSError:
        root_is_dir = False
    if not root_is_dir:
        raise FileChannelError(root, f'the root {root} is not a directory')
    writer = _Writer(root)
    try:
        for member in _members(data):
            connection_id, name = _parse_entry(member)
            content = data[member.offset : member.offset + member.size]
            writer.write(member.name, connection_id, name, content)
    except FileChannelError:
        writer.undo()
        raise
    except (_Unreadable, OSError, ValueError) as error:
        writer.undo()
        raise FileChannelError('(archive)', f'the tar is unreadable ({error})') from None
