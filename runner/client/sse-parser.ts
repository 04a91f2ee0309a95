/**
 * A small Server-Sent Events parser (the WHATWG rules that matter here): `id`, `event` and
 * multi-line `data` fields, comments, and any of CRLF, LF or CR as line ends.
 */

export interface SseMessage {
  /** This message's own `id:` field, if it had one. */
  id?: string;
  event: string;
  data: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private frameId: string | undefined;
  private sawData = false;
  /** The last `id:` seen (it persists across messages, as EventSource's lastEventId does). */
  lastEventId: string | undefined;

  /** Feeds decoded text; returns the messages it completed. */
  push(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone CR at the end may be the first half of CRLF: wait for more.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.sawData = true;
    } else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) {
      this.frameId = value;
      this.lastEventId = value;
    }
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const message = this.sawData
      ? {
          ...(this.frameId === undefined ? {} : { id: this.frameId }),
          event: this.event || 'message',
          data: this.data.join('\n'),
        }
      : undefined;
    this.frameId = undefined;
    this.data = [];
    this.event = '';
    this.sawData = false;
    return message;
  }
}
