"""The runner's calls on the supervisor's connection (`files_replace`, `files_remove`), answered on
the same connection as `{id, result}` or `{id, error: {code, message}}`. Lines that are not calls
(the answer to our own `supervisor_resume`) are dropped. Imported only once the agent runs."""
import os

import wirejson

FILES_ROOT = '/tmp/grexal'
MAX_LINE_BYTES = 16 * 1024 * 1024


def _run(method, params):
    import binascii

    from filechannel import CONNECTION_ID, FileChannelError
    from filerotate import remove_files, replace_files

    root = os.environ.get('GREXAL_FILES_ROOT', FILES_ROOT)
    connection_id = params.get('connectionId') if isinstance(params, dict) else None
    if not isinstance(connection_id, str) or not CONNECTION_ID.fullmatch(connection_id):
        raise FileChannelError('(params)', 'connectionId is not a connection id')
    if method == 'files_replace':
        files_tar = params.get('filesTar')
        if not isinstance(files_tar, str):
            raise FileChannelError('(params)', 'filesTar is not base64 text')
        try:
            data = binascii.a2b_base64(files_tar)
        except binascii.Error:
            raise FileChannelError('(params)', 'filesTar is not base64') from None
        replace_files(root, connection_id, data)
    else:
        remove_files(root, connection_id)


def answer(line):
    """The reply line (str) to a runner's call, or None for a line that is not one."""
    try:
        message = wirejson.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get('method'), str):
        return None
    request_id, method = message.get('id'), message['method']
    if method not in ('files_replace', 'files_remove'):
        error = {'code': 'unknown_method', 'message': f'the supervisor has no method {method[:64]}'}
        return wirejson.dumps({'id': request_id, 'error': error}) + '\n'
    try:
        _run(method, message.get('params'))
        reply = {'id': request_id, 'result': {}}
    except Exception as failure:  # noqa: BLE001  (every failure is the runner's answer, never a crash)
        reply = {'id': request_id, 'error': {'code': 'internal', 'message': str(failure)[:500]}}
    return wirejson.dumps(reply) + '\n'


class Lines:
    """Splits what the runner sends into lines; a line over MAX_LINE_BYTES drops the buffer."""

    def __init__(self, initial=b''):
        self.buffered = bytearray(initial)

    def feed(self, data):
        self.buffered += data
        lines = []
        while True:
            end = self.buffered.find(b'\n')
            if end < 0:
                break
            lines.append(bytes(self.buffered[:end]).decode('utf-8', 'replace'))
            del self.buffered[: end + 1]
        if len(self.buffered) > MAX_LINE_BYTES:
            self.buffered.clear()
        return [line for line in lines if line]
