"""Live changes to the file channel while the agent runs, asked by the runner on the supervisor's
connection (`files_replace`, `files_remove`; docs/ctx-protocol.md).

A reader never sees a partial or missing file: every new file is first written whole beside its
target, under a name no connection's file can have (a leading dot), with O_EXCL|O_NOFOLLOW and mode
0400 by this process (the agent's uid, as at the start); only once all are written is each renamed
over its target, which the kernel does atomically. If any write fails (the tmpfs is full, the
agent planted something), every new file is unlinked and the old ones stay as they were. All of it
goes through directory file descriptors opened with O_NOFOLLOW, so a link the agent swapped in for
/tmp/grexal/<id> is refused, never followed.
"""
import os

from filechannel import CREATE_FLAGS, FileChannelError, _members, _parse_entry, _Unreadable

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Staged:
    __slots__ = ('name', 'temp')

    def __init__(self, name, temp):
        self.name, self.temp = name, temp


def _open_dir(name, dir_fd, create):
    if create:
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            pass
    return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def _entries_for(data, connection_id):
    """`[(name, content)]` of the tar, every entry `<connection_id>/<name>` of this connection."""
    entries = []
    try:
        for member in _members(data):
            entry_connection, name = _parse_entry(member)
            if entry_connection != connection_id:
                raise FileChannelError(member.name, f'it is not a file of connection {connection_id}')
            entries.append((name, data[member.offset : member.offset + member.size]))
    except (_Unreadable, ValueError) as error:
        raise FileChannelError('(archive)', f'the tar is unreadable ({error})') from None
    return entries


def _stage(dir_fd, name, content):
    temp = f'.{name}.{os.urandom(6).hex()}.new'
    fd = os.open(temp, CREATE_FLAGS, 0o400, dir_fd=dir_fd)
    staged = _Staged(name, temp)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        os.close(fd)
        os.unlink(temp, dir_fd=dir_fd)
        raise
    os.close(fd)
    return staged


def _unlink_all(dir_fd, names):
    for name in names:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except OSError:
            pass


def replace_files(root, connection_id, data):
    """Replaces the connection's files with the tar's; old files intact on any failure."""
    entries = _entries_for(data, connection_id)
    root_fd = os.open(root, DIR_FLAGS)
    try:
        dir_fd = _open_dir(connection_id, root_fd, create=True)
    except OSError as error:
        os.close(root_fd)
        raise FileChannelError(connection_id, f'cannot open its directory ({error.strerror})') from None
    staged = []
    try:
        try:
            for name, content in entries:
                staged.append(_stage(dir_fd, name, content))
        except OSError as error:
            _unlink_all(dir_fd, [s.temp for s in staged])
            raise FileChannelError(
                f'{connection_id}/{name}', f'cannot write the new file ({error.strerror}); the old files are intact'
            ) from None
        for index, item in enumerate(staged):
            try:
                os.rename(item.temp, item.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except OSError as error:
                _unlink_all(dir_fd, [s.temp for s in staged[index:]])
                raise FileChannelError(
                    f'{connection_id}/{item.name}', f'cannot rename the new file into place ({error.strerror})'
                ) from None
    finally:
        os.close(dir_fd)
        os.close(root_fd)


def remove_files(root, connection_id):
    """Removes the connection's directory and files; nothing to do when they are already gone."""
    root_fd = os.open(root, DIR_FLAGS)
    try:
        try:
            dir_fd = _open_dir(connection_id, root_fd, create=False)
        except FileNotFoundError:
            return
        except OSError as error:
            raise FileChannelError(connection_id, f'cannot open its directory ({error.strerror})') from None
        try:
            _unlink_all(dir_fd, os.listdir(dir_fd))
        finally:
            os.close(dir_fd)
        try:
            os.rmdir(connection_id, dir_fd=root_fd)
        except OSError as error:
            raise FileChannelError(connection_id, f'cannot remove its directory ({error.strerror})') from None
    finally:
        os.close(root_fd)
