// A tiny login site, standing for the third-party site a real agent logs in to. The demo agent
// serves it inside its own sandbox for the desktop takeover; for a local-browser run
// (`npm run demo -- --browser local`, test/dev-browser.test.ts) the demo serves it on the host's
// loopback, where the developer's browser is, and hands the agent its URL (DEMO_LOGIN_URL).
// Its two fields are huge on purpose: a person, or the scripted user of `npm run demo -- --auto`,
// finds them at once through the stream. GET /whoami names the session's user (the agent asks it
// through the browser, which holds the cookie).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const PASSWORD = 'grexal-demo';

const page = (body) => `<!doctype html><html><head><meta charset="utf-8"><title>Demo site</title><style>
  html, body { margin: 0; height: 100%; font: 28px sans-serif; background: #f4f1ea; }
  form { display: grid; grid-template-rows: 10vh 36vh 36vh 12vh; gap: 2vh; height: 100%; padding: 0 4vw; box-sizing: border-box; }
  input, button { font-size: 40px; border: 3px solid #334; border-radius: 12px; padding: 0 24px; }
  h1 { margin: 2vh 0 0; font-size: 32px; }
</style></head><body>${body}</body></html>`;

const loginForm = page(`<form method="post" action="/login">
  <h1>Demo site: log in (password: ${PASSWORD})</h1>
  <input name="username" placeholder="username" autocomplete="off" autofocus>
  <input name="password" type="password" placeholder="password">
  <button type="submit">Log in</button>
</form>`);

/** Serves the site on 127.0.0.1:`port` (0: any free port); `onLogin(username)` after each login. */
export async function startLoginSite(port = 0, { onLogin } = {}) {
  const sessions = new Map();
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/login') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(loginForm);
      return;
    }
    if (req.method === 'GET' && req.url === '/whoami') {
      const session = /(?:^|;\s*)demo_session=([0-9a-f]+)/.exec(req.headers.cookie ?? '')?.[1];
      const user = session && sessions.get(session);
      res.writeHead(user ? 200 : 401, { 'content-type': 'text/plain' }).end(user ?? 'nobody');
      return;
    }
    if (req.method === 'POST' && req.url === '/login') {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const username = form.get('username')?.trim();
        if (!username || form.get('password') !== PASSWORD) {
          res
            .writeHead(401, { 'content-type': 'text/html' })
            .end(page('<h1>Wrong password. <a href="/login">Again</a></h1>'));
          return;
        }
        const session = randomBytes(16).toString('hex');
        sessions.set(session, username);
        onLogin?.(username);
        res.writeHead(200, {
          'set-cookie': `demo_session=${session}; HttpOnly; Path=/`,
          'content-type': 'text/html',
        });
        res.end(page(`<h1>Welcome, ${username.replace(/[<>&"]/g, '')}! You can press Done.</h1>`));
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    userOf: (session) => sessions.get(session),
    /** Who logged in so far, in order. */
    loggedIn: () => [...sessions.values()],
    // Chromium keeps its connections alive: close them too, or close() waits for their timeout.
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
