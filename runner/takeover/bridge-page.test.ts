/**
 * The takeover routes end to end: the page, its assets and the Done/Cancel actions (fixture:
 * testing/bridge-fixture.ts).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, server, useBridgeFixture } from './testing/bridge-fixture.ts';

useBridgeFixture();

describe('page and actions', () => {
  it('serves the page with the reason escaped, strict headers, and no secret in it', async () => {
    const { id, token } = open();
    const response = await fetch(`${server.url}/takeover/${id}?token=${token}`);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('Log in to &lt;b&gt;Example&lt;/b&gt;');
    expect(html).toContain('Example &amp; co');
    expect(html).not.toContain('<b>Example');
    expect(html).not.toContain(token);
    expect(html).not.toContain('vnc.sock');
    expect(response.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('cache-control')).toBe('no-store');
    // The boot script opens the stream at once; the CSP allows it by its hash and nothing else inline.
    const inline = /<script>(.*?)<\/script>/s.exec(html)![1]!;
    const hash = createHash('sha256').update(inline).digest('base64');
    expect(response.headers.get('content-security-policy')).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(inline).toContain('handshake');
    expect((await fetch(`${server.url}/takeover/${id}`)).status).toBe(401);
    expect((await fetch(`${server.url}/takeover/${id}?token=nope`)).status).toBe(403);
  });

  it('links the bundle by version, which a browser may keep; an unversioned link revalidates', async () => {
    const { id, token } = open();
    const html = await (await fetch(`${server.url}/takeover/${id}?token=${token}`)).text();
    const src = /src="(assets\/takeover\.js\?v=[^"]+)"/.exec(html)![1]!;
    const kept = await fetch(new URL(src, `${server.url}/takeover/`));
    expect(kept.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    expect(await kept.text()).toBe('console.log(1)');
    const plain = await fetch(`${server.url}/takeover/assets/takeover.js`);
    expect(plain.headers.get('cache-control')).toBe('no-cache');
    const stale = await fetch(`${server.url}/takeover/assets/takeover.js?v=old`);
    expect(stale.headers.get('cache-control')).toBe('no-cache');
  });

  it('serves the bundled assets, and nothing else from that folder', async () => {
    const js = await fetch(`${server.url}/takeover/assets/takeover.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
    expect((await fetch(`${server.url}/takeover/assets/vnc.sock`)).status).toBe(404);
    expect((await fetch(`${server.url}/takeover/assets/..%2Fvnc.sock`)).status).toBe(404);
    // Found by the API fuzz (runner/api/app.fuzz.test.ts): these reached Object.prototype, a 500.
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect((await fetch(`${server.url}/takeover/assets/${name}`)).status, name).toBe(404);
    }
  });

  it('completes with the token in a JSON body; refuses a wrong one, another origin, a GET', async () => {
    const { id, token, done } = open();
    const url = `${server.url}/v1/takeovers/${id}/complete`;
    expect((await fetch(url, { method: 'POST', body: JSON.stringify({ token: 'x' }) })).status).toBe(403);
    expect((await fetch(url, { method: 'POST' })).status).toBe(401);
    const foreign = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ token }),
      headers: { origin: 'http://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect((await fetch(url)).status).toBe(405);
    const ok = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ token }),
      headers: { origin: server.url },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ takeover: { id, state: 'completed' } });
    await expect(done).resolves.toBe('completed');
    expect((await fetch(url, { method: 'POST', body: JSON.stringify({ token }) })).status).toBe(410);
  });

  it('cancels with the token in the query string', async () => {
    const { id, token, done } = open();
    const response = await fetch(`${server.url}/v1/takeovers/${id}/cancel?token=${token}`, {
      method: 'POST',
    });
    expect(response.status).toBe(200);
    await expect(done).rejects.toMatchObject({ code: 'takeover_cancelled' });
  });
});
