/**
 * The engine client never follows a redirect. docker-modem sends every request through its own
 * copy of follow-redirects 0.0.x (lib/http.js): a 3xx from the engine made it dial the host and
 * port of the Location header (`/images/../../127.0.0.1:1/x/json` was answered with a redirect to
 * 127.0.0.1:1), on a request that had no 'error' listener, so a refused connection killed the
 * process. A Location with an unknown scheme threw inside the response handler, also fatal.
 *
 * Replacing that module's `request` with Node's own leaves docker-modem's handling of the answer
 * as it is: a 3xx is a status it did not expect, and comes back as an error with `statusCode`,
 * which fromDockerError names. Process-wide on purpose: every client in the process is the
 * engine's, and none may follow.
 *
 * A request over the engine's Unix socket names no TLS server either: Node's HTTP agent otherwise
 * works one out for every request (`servername`, used by TLS only) and checks it with net.isIP,
 * whose IPv6 pattern V8 compiles at its first use and again at its second (~5-15 ms of a CLI's
 * start, before its create reached the engine).
 */
import nodeHttp, { type RequestOptions } from 'node:http';
import nodeHttps from 'node:https';
import modemHttp from 'docker-modem/lib/http.js';

let installed = false;

export function refuseEngineRedirects(): void {
  if (installed) return;
  installed = true;
  modemHttp.http.request = (options, callback) => nodeHttp.request(withoutServerName(options), callback);
  modemHttp.https.request = (options, callback) => nodeHttps.request(options, callback);
}

/** `servername: ''` (Node's "none") on a request over a Unix socket, unless it names one. */
function withoutServerName(options: RequestOptions): RequestOptions {
  if (options.socketPath === undefined) return options;
  const named: RequestOptions & { servername?: string } = { servername: '', ...options };
  return named;
}
