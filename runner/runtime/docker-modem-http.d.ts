/** docker-modem's own HTTP wrapper (lib/http.js), which follows redirects; see no-redirects.ts. */
declare module 'docker-modem/lib/http.js' {
  import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';

  type Request = (options: RequestOptions, callback?: (res: IncomingMessage) => void) => ClientRequest;
  const modemHttp: { http: { request: Request }; https: { request: Request } };
  export default modemHttp;
}
